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
    const rows = await db.$queryRawUnsafe<MessageRow[]>(
      `SELECT ${MESSAGE_COLUMNS}
         FROM unnest($1::uuid[], $2::int[]) AS c(id, after)
         CROSS JOIN LATERAL (
           SELECT * FROM messages WHERE conversation_id = c.id AND seq > c.after ORDER BY seq LIMIT $3
         ) m
        ORDER BY m.conversation_id, m.seq`,
      withMessages.map((c) => c.id),
      withMessages.map((c) => c.cursor),
      limit,
    );
    // Truncating the concatenation keeps a gapless prefix per conversation: the client's cursor stays valid.
    messages = rows.slice(0, limit).map(toMessage);
    const lastReturned = new Map<string, number>();
    for (const m of messages) lastReturned.set(m.conversationId, m.seq);
    hasMore = withMessages.some((c) => (lastReturned.get(c.id) ?? c.cursor) < c.lastSeq);
  }

  const views = await loadConversationViews(
    db,
    userId,
    behind.map((c) => c.id),
  );
  return { conversations: [...views.values()], messages, hasMore };
}
