// The sync protocol: everything a device missed, from its per-conversation cursors.
// The answer holds each listed conversation that has messages after its cursor, every conversation the client did
// not list (cursor 0: it is new to this device), and the messages after each cursor, ascending within a
// conversation. Because seq is gapless and commit-ordered, "after the cursor" can never skip a message that commits
// later with a smaller seq.
import type { Db } from "../db/client.js";
import type { SyncResult } from "../protocol/events.js";
import type { Message } from "../protocol/types.js";
import { loadConversationViews } from "./conversation-views.js";
import { MESSAGE_COLUMNS, type MessageRow, toMessage } from "./message-rows.js";

export const SYNC_DEFAULT_LIMIT = 500;

export async function syncAfterCursors(
  db: Db,
  userId: string,
  cursors: Record<string, number>,
  limit = SYNC_DEFAULT_LIMIT,
  /** Fills messages' attachments (with download URLs): the answer goes to a member. */
  fillAttachments?: (messages: Message[]) => Promise<unknown>,
): Promise<SyncResult> {
  const memberships = await db.member.findMany({
    where: { userId },
    select: { conversationId: true, conversation: { select: { lastSeq: true } } },
  });
  // Cursors naming conversations the caller is not in are simply never looked at.
  const behind = memberships
    .map((m) => ({ id: m.conversationId, cursor: cursors[m.conversationId] ?? 0, lastSeq: m.conversation.lastSeq }))
    .filter((c) => c.lastSeq > c.cursor || !(c.id in cursors));
  const withMessages = behind.filter((c) => c.lastSeq > c.cursor);

  let messages: Message[] = [];
  let hasMore = false;
  if (withMessages.length > 0) {
    // seq is gapless, so a conversation has exactly lastSeq - cursor messages after its cursor: the overall limit is
    // shared out here, in the answer's order (conversation id, then seq), and the query reads at most `limit` rows.
    // Before, each conversation's lateral read up to `limit` rows and the rest were dropped in JavaScript: a user in
    // hundreds of busy groups pulled hundreds of thousands of rows to return a thousand.
    const ordered = [...withMessages].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
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

  const views = await loadConversationViews(
    db,
    userId,
    behind.map((c) => c.id),
  );
  const conversations = [...views.values()];
  if (fillAttachments !== undefined) {
    const last = conversations.flatMap((c) => (c.lastMessage === null ? [] : [c.lastMessage]));
    await fillAttachments([...messages, ...last]);
  }
  return { conversations, messages, hasMore };
}
