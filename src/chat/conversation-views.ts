// Builds the contract's full conversation objects: members, last message, unread count and mute, as one viewer sees
// them. A fixed number of queries for any number of conversations or viewers, so list endpoints, sync and
// `conversation:updated` never query per conversation or per member.
import type { Db } from "../db/client.js";
import type { Prisma } from "../db/generated/client.js";
import type { Conversation, Message } from "@chat-gateway/protocol";
import { isPendingRequester, requestOf } from "./message-requests.js";
import { MESSAGE_COLUMNS, type MessageRow, toMessage } from "./message-rows.js";

const withMembers = {
  members: {
    orderBy: { joinedAt: "asc" },
    include: { user: { select: { id: true, username: true, displayName: true } } },
  },
} satisfies Prisma.ConversationInclude;

type ConversationWithMembers = Prisma.ConversationGetPayload<{ include: typeof withMembers }>;

function toView(
  c: ConversationWithMembers,
  viewerId: string,
  lastMessage: Message | null,
  unreadCount: number,
): Conversation {
  // The requester of a pending message request learns nothing of the recipient's markers (message-requests.ts).
  const hideOthers = isPendingRequester(c, viewerId);
  return {
    id: c.id,
    type: c.type,
    title: c.title,
    members: c.members.map((m) => {
      const hidden = hideOthers && m.userId !== viewerId;
      return {
        id: m.user.id,
        username: m.user.username,
        displayName: m.user.displayName,
        role: m.role,
        readSeq: hidden ? 0 : m.readSeq,
        deliveredSeq: hidden ? 0 : m.deliveredSeq,
      };
    }),
    lastSeq: c.lastSeq,
    lastMessage,
    unreadCount,
    muted: c.members.find((m) => m.userId === viewerId)?.muted ?? false,
    createdAt: c.createdAt.toISOString(),
    request: requestOf(c),
  };
}

async function lastMessages(db: Db, conversationIds: string[]): Promise<Map<string, Message>> {
  const rows = await db.$queryRawUnsafe<MessageRow[]>(
    `SELECT ${MESSAGE_COLUMNS}
       FROM conversations c JOIN messages m ON m.conversation_id = c.id AND m.seq = c.last_seq
      WHERE c.id = ANY($1::uuid[])`,
    conversationIds,
  );
  return new Map(rows.map((row) => [row.conversation_id, toMessage(row)]));
}

/**
 * The unread-count statement: $1 the conversations, $2 one member or null (every member). Exported for the EXPLAIN
 * test. Unread = messages after the member's read marker that others sent (the contract's definition), not deleted.
 * Because seq is gapless that is lastSeq minus the marker, less the deleted messages after it and the member's own
 * live ones after it, each counted on an index that holds only those rows (a tombstone index, and the sender's
 * messages of the conversation): the cost no longer grows with the backlog. Counting the messages themselves read
 * every unread row, ~1.7 s for the 1,000 members of a 22,000-message group at 1M rows (bench/history-at-size.ts).
 * The member's own messages after the marker are rare (sending moves the marker): after a rejoin, for instance.
 * `c.id = ANY($1)` repeats the join's condition on purpose: without it PostgreSQL hashed every row of `conversations`
 * (100,000 rows, 114 ms) to join the 1,000 members of one group, since it cannot carry ANY() across the join itself.
 */
export const UNREAD_SQL = `SELECT mb.conversation_id::text, mb.user_id::text,
       greatest(0, c.last_seq - mb.read_seq
         - (SELECT count(*) FROM messages d
             WHERE d.conversation_id = mb.conversation_id AND d.seq > mb.read_seq AND d.deleted_at IS NOT NULL)
         - (SELECT count(*) FROM messages o
             WHERE o.conversation_id = mb.conversation_id AND o.sender_id = mb.user_id AND o.seq > mb.read_seq
               AND o.deleted_at IS NULL))::int AS unread
  FROM members mb JOIN conversations c ON c.id = mb.conversation_id
 WHERE mb.conversation_id = ANY($1::uuid[]) AND c.id = ANY($1::uuid[])
   AND ($2::uuid IS NULL OR mb.user_id = $2::uuid)`;

async function unreadCounts(db: Db, conversationIds: string[], viewerId: string | null): Promise<Map<string, number>> {
  const rows = await db.$queryRawUnsafe<{ conversation_id: string; user_id: string; unread: number }[]>(
    UNREAD_SQL,
    conversationIds,
    viewerId,
  );
  return new Map(rows.map((row) => [`${row.conversation_id}:${row.user_id}`, Number(row.unread)]));
}

export async function loadConversationViews(
  db: Db,
  viewerId: string,
  conversationIds: string[],
): Promise<Map<string, Conversation>> {
  const views = new Map<string, Conversation>();
  if (conversationIds.length === 0) return views;
  const [conversations, last, unread] = await Promise.all([
    db.conversation.findMany({ where: { id: { in: conversationIds } }, include: withMembers }),
    lastMessages(db, conversationIds),
    unreadCounts(db, conversationIds, viewerId),
  ]);
  for (const c of conversations) {
    views.set(c.id, toView(c, viewerId, last.get(c.id) ?? null, unread.get(`${c.id}:${viewerId}`) ?? 0));
  }
  return views;
}

export async function loadConversationView(db: Db, viewerId: string, conversationId: string): Promise<Conversation> {
  const views = await loadConversationViews(db, viewerId, [conversationId]);
  return views.get(conversationId)!;
}

/** Every member's own view of one conversation (their unread count and mute differ), for `conversation:updated`. */
export async function loadViewsForMembers(db: Db, conversationId: string): Promise<Map<string, Conversation>> {
  const byMember = new Map<string, Conversation>();
  const [conversation, last, unread] = await Promise.all([
    db.conversation.findUnique({ where: { id: conversationId }, include: withMembers }),
    lastMessages(db, [conversationId]),
    unreadCounts(db, [conversationId], null),
  ]);
  if (conversation === null) return byMember;
  for (const m of conversation.members) {
    const view = toView(
      conversation,
      m.userId,
      last.get(conversationId) ?? null,
      unread.get(`${conversationId}:${m.userId}`) ?? 0,
    );
    byMember.set(m.userId, view);
  }
  return byMember;
}
