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
import type { Db } from "../db/client.js";
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
  db: Db,
  userId: string,
  cursors: Record<string, SyncCursor>,
  limit = SYNC_DEFAULT_LIMIT,
  /** Fills messages' attachments (with download URLs): the answer goes to a member. */
  fillAttachments?: (messages: Message[]) => Promise<unknown>,
): Promise<SyncResult> {
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
  const { messages, hasMore: moreMessages } = await messagesAfter(db, withMessages, limit);
  const withChanges = behind.filter((c) => c.listed && c.changesAfter !== undefined && c.changeSeq > c.changesAfter);
  const { changes, changeCursors, hasMore: moreChanges } = await changesAfter(db, withChanges, limit);
  // Unlisted conversations: their messages are read after the counter, so they hold every change up to it.
  for (const c of behind) if (!c.listed) changeCursors[c.id] = c.changeSeq;

  const views = await loadConversationViews(
    db,
    userId,
    behind.map((c) => c.id),
  );
  const conversations = [...views.values()];
  if (fillAttachments !== undefined) {
    const last = conversations.flatMap((c) => (c.lastMessage === null ? [] : [c.lastMessage]));
    await fillAttachments([...messages, ...changes, ...last]);
  }
  return { conversations, messages, changes, changeCursors, hasMore: moreMessages || moreChanges };
}

async function messagesAfter(
  db: Db,
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
    const wanted: { id: string; after: number; upto: number }[] = [];
    let left = limit;
    for (const c of ordered) {
      if (left <= 0) break;
      const take = Math.min(c.lastSeq - c.cursor, left);
      wanted.push({ id: c.id, after: c.cursor, upto: c.cursor + take });
      left -= take;
    }
    const rows = await db.$queryRawUnsafe<MessageRow[]>(
      `SELECT ${MESSAGE_COLUMNS}
         FROM unnest($1::uuid[], $2::int[], $3::int[]) AS c(id, after, upto)
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
    // A gapless prefix per conversation: the client's cursor stays valid.
    messages = rows.map(toMessage);
    const lastReturned = new Map<string, number>();
    for (const m of messages) lastReturned.set(m.conversationId, m.seq);
    hasMore = withMessages.some((c) => (lastReturned.get(c.id) ?? c.cursor) < c.lastSeq);
  }
  return { messages, hasMore };
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
