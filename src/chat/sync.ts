// The sync protocol: everything a device missed, from its per-conversation cursors.
// The answer holds each listed conversation that has messages after its cursor, every conversation the client did
// not list (cursor 0: it is new to this device), and the messages after each cursor, ascending within a
// conversation. Because seq is gapless and commit-ordered, "after the cursor" can never skip a message that commits
// later with a smaller seq.
//
// Changes (edits, deletions, reactions; chat/message-changes.ts) ride the same protocol. A client that sends an object
// cursor {seq, changes} also gets, in `changes`, every message at or below `seq` whose change number is above
// `changes`, as it is now, ascending by change number; and in `changeCursors` the change number it may store next.
// Change numbers commit in order (like seq), so "changed after k" never skips a change that commits later with a
// smaller number. A message above the cursor's seq comes in `messages`, already in its current state.
//
// With a read replica (DATABASE_READ_URL) the cursor state (each conversation's last_seq and change counter) is read on
// the primary, and then the messages and the conversation objects on the replica, each answer checked against that
// state: the messages must reach every conversation's last_seq read on the primary (seq is gapless and the replica
// replays commits in order, so reaching it means nothing below is missing) and come with the conversation's change
// counter, read in the same statement, at least as high (so they show every change the answer's change cursor
// covers); every conversation object must show at least that last_seq. An answer that falls short is read again from
// the primary: a lagging replica never makes a sync miss a committed message or change. The changes themselves are
// read on the primary: change numbers are not gapless among the rows (a message changed twice keeps only its last
// number), so a replica's answer of them could not prove itself complete.
import type { Db } from "../db/client.js";
import type { Reads } from "../db/reads.js";
import type { Message, SyncCursor, SyncResult } from "@chat-gateway/protocol";
import { loadConversationViews } from "./conversation-views.js";
import { MESSAGE_COLUMNS, type MessageRow, toMessage } from "./message-rows.js";

export const SYNC_DEFAULT_LIMIT = 500;

interface CursorState {
  id: string;
  cursor: number;
  lastSeq: number;
  /** The conversation's change counter, read before any message: every change up to it is in what is read after. */
  changeSeq: number;
  /** The client's change cursor; undefined for a number cursor (an older client, which gets no `changes`). */
  changesAfter: number | undefined;
  listed: boolean;
}

export async function syncAfterCursors(
  reads: Reads,
  userId: string,
  cursors: Record<string, SyncCursor>,
  limit = SYNC_DEFAULT_LIMIT,
  /** Fills messages' attachments (with download URLs): the answer goes to a member. */
  fillAttachments?: (messages: Message[]) => Promise<unknown>,
): Promise<SyncResult> {
  const db = reads.primary;
  const memberships = await db.$queryRawUnsafe<{ id: string; last_seq: number; change_seq: number }[]>(
    `SELECT mb.conversation_id::text AS id, c.last_seq, coalesce(k.change_seq, 0) AS change_seq
       FROM members mb
       JOIN conversations c ON c.id = mb.conversation_id
       LEFT JOIN message_change_counters k ON k.conversation_id = mb.conversation_id
      WHERE mb.user_id = $1::uuid`,
    userId,
  );
  // Cursors naming conversations the caller is not in are simply never looked at.
  const states: CursorState[] = memberships.map((m) => {
    const given = cursors[m.id];
    const listed = given !== undefined;
    const cursor = typeof given === "object" ? given.seq : (given ?? 0);
    // An unlisted conversation is new to this device: everything comes as messages, changes included.
    const changesAfter = typeof given === "object" ? given.changes : listed ? undefined : 0;
    return { id: m.id, cursor, lastSeq: Number(m.last_seq), changeSeq: Number(m.change_seq), changesAfter, listed };
  });
  const behind = states.filter(
    (c) => c.lastSeq > c.cursor || !c.listed || (c.changesAfter !== undefined && c.changeSeq > c.changesAfter),
  );
  const withMessages = behind.filter((c) => c.lastSeq > c.cursor);
  const { messages, hasMore: moreMessages } = await messagesAfter(reads, withMessages, limit);
  const withChanges = behind.filter((c) => c.listed && c.changesAfter !== undefined && c.changeSeq > c.changesAfter);
  const { changes, changeCursors, hasMore: moreChanges } = await changesAfter(db, withChanges, limit);
  // Unlisted conversations: their messages are read after the counter, so they hold every change up to it.
  for (const c of behind) if (!c.listed) changeCursors[c.id] = c.changeSeq;

  const views = await reads.read(
    "sync_conversations",
    (source) =>
      loadConversationViews(
        source,
        userId,
        behind.map((c) => c.id),
      ),
    (found) => behind.every((c) => (found.get(c.id)?.lastSeq ?? -1) >= c.lastSeq),
  );
  const conversations = [...views.values()];
  if (fillAttachments !== undefined) {
    const last = conversations.flatMap((c) => (c.lastMessage === null ? [] : [c.lastMessage]));
    await fillAttachments([...messages, ...changes, ...last]);
  }
  return { conversations, messages, changes, changeCursors, hasMore: moreMessages || moreChanges };
}

async function messagesAfter(
  reads: Reads,
  withMessages: CursorState[],
  limit: number,
): Promise<{ messages: Message[]; hasMore: boolean }> {
  let messages: Message[] = [];
  let hasMore = false;
  if (withMessages.length > 0) {
    // seq is gapless, so a conversation has exactly lastSeq - cursor messages after its cursor: the overall limit is
    // shared out here, in the answer's order (conversation id, then seq), and the query reads at most `limit` rows.
    // Before, each conversation's lateral read up to `limit` rows and the rest were dropped in JavaScript: a user in
    // hundreds of busy groups pulled hundreds of thousands of rows to return a thousand.
    const ordered = [...withMessages].sort(byId);
    const wanted: Wanted[] = [];
    let left = limit;
    for (const c of ordered) {
      if (left <= 0) break;
      const take = Math.min(c.lastSeq - c.cursor, left);
      wanted.push({ id: c.id, after: c.cursor, upto: c.cursor + take, changeSeq: c.changeSeq });
      left -= take;
    }
    const rows = await reads.read(
      "sync_messages",
      (db) => rowsUpTo(db, wanted, limit),
      // Complete when every conversation's rows reach the seq wanted (a replica behind stops below it) and were read
      // with its change counter at least where the primary had it: the messages are then in their state as of the
      // change cursor this answer gives, or newer.
      (answer) => {
        const top = new Map<string, number>();
        const counter = new Map<string, number>();
        for (const row of answer) {
          top.set(row.conversation_id, Math.max(top.get(row.conversation_id) ?? 0, Number(row.seq)));
          counter.set(row.conversation_id, Number(row.change_counter ?? 0));
        }
        return wanted.every((w) => (top.get(w.id) ?? w.after) >= w.upto && (counter.get(w.id) ?? 0) >= w.changeSeq);
      },
    );
    // A gapless prefix per conversation: the client's cursor stays valid.
    messages = rows.map(toMessage);
    const lastReturned = new Map<string, number>();
    for (const m of messages) lastReturned.set(m.conversationId, m.seq);
    hasMore = withMessages.some((c) => (lastReturned.get(c.id) ?? c.cursor) < c.lastSeq);
  }
  return { messages, hasMore };
}

interface Wanted {
  id: string;
  after: number;
  upto: number;
  /** The conversation's change counter as the primary had it. */
  changeSeq: number;
}

/**
 * The rows (after, upto] of each wanted conversation, ascending by conversation id then seq, each with its
 * conversation's change counter as the same snapshot saw it (null: nothing changed yet).
 */
function rowsUpTo(
  db: Db,
  wanted: Wanted[],
  limit: number,
): Promise<(MessageRow & { change_counter: number | null })[]> {
  return db.$queryRawUnsafe<(MessageRow & { change_counter: number | null })[]>(
    `SELECT ${MESSAGE_COLUMNS}, k.change_seq AS change_counter
       FROM unnest($1::uuid[], $2::int[], $3::int[]) AS c(id, after, upto)
       LEFT JOIN message_change_counters k ON k.conversation_id = c.id
       CROSS JOIN LATERAL (
         SELECT * FROM messages
          WHERE conversation_id = c.id AND seq > c.after AND seq <= c.upto
          ORDER BY seq LIMIT c.upto - c.after
       ) m
      ORDER BY m.conversation_id, m.seq
      LIMIT $4`,
    wanted.map((c) => c.id),
    wanted.map((c) => c.after),
    wanted.map((c) => c.upto),
    limit,
  );
}

/**
 * Messages at or below each cursor's seq changed after its change cursor, ascending by change number, at most `limit`
 * in all. A conversation whose changes all fit may move its change cursor to the counter read before (or to the
 * highest change returned, if above); one cut short moves only to its highest change returned.
 */
async function changesAfter(
  db: Db,
  withChanges: CursorState[],
  limit: number,
): Promise<{ changes: Message[]; changeCursors: Record<string, number>; hasMore: boolean }> {
  const changeCursors: Record<string, number> = {};
  if (withChanges.length === 0) return { changes: [], changeCursors, hasMore: false };
  const ordered = [...withChanges].sort(byId);
  const rows = await db.$queryRawUnsafe<MessageRow[]>(
    `SELECT ${MESSAGE_COLUMNS}
       FROM unnest($1::uuid[], $2::int[], $3::int[]) AS c(id, upto, after)
       CROSS JOIN LATERAL (
         SELECT * FROM messages
          WHERE conversation_id = c.id AND change_seq > 0 AND change_seq > c.after AND seq <= c.upto
          ORDER BY change_seq LIMIT $4 + 1
       ) m
      ORDER BY m.conversation_id, m.change_seq
      LIMIT $4 + 1`,
    ordered.map((c) => c.id),
    ordered.map((c) => c.cursor),
    ordered.map((c) => c.changesAfter!),
    limit,
  );
  const cut = rows.length > limit;
  // The conversation of the first row left out, and every one after it in the answer's order, is incomplete.
  const firstIncomplete = cut ? rows[limit]!.conversation_id : undefined;
  const changes = rows.slice(0, limit).map(toMessage);
  const highest = new Map<string, number>();
  for (const m of changes) highest.set(m.conversationId, m.changeSeq);
  for (const c of ordered) {
    const complete = firstIncomplete === undefined || c.id < firstIncomplete;
    const top = highest.get(c.id);
    if (complete) changeCursors[c.id] = Math.max(c.changeSeq, top ?? 0);
    else if (top !== undefined) changeCursors[c.id] = top;
  }
  return { changes, changeCursors, hasMore: cut };
}

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
