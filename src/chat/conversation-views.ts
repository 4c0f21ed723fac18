// Builds the contract's full conversation objects for one viewer: members, last message, unread count, muted.
// Four queries for any number of conversations, so list endpoints and sync do not query per conversation.
import type { Db } from "../db/client.js";
import type { Conversation, Message } from "../protocol/types.js";
import { toMessage } from "./message-writer.js";

interface MessageRowWithSender {
  id: string;
  conversation_id: string;
  seq: number;
  sender_id: string;
  client_msg_id: string;
  content: string;
  created_at: Date;
}

export async function loadConversationViews(
  db: Db,
  viewerId: string,
  conversationIds: string[],
): Promise<Map<string, Conversation>> {
  const views = new Map<string, Conversation>();
  if (conversationIds.length === 0) return views;

  const [conversations, lastMessages, unread] = await Promise.all([
    db.conversation.findMany({
      where: { id: { in: conversationIds } },
      include: {
        members: {
          orderBy: { joinedAt: "asc" },
          include: { user: { select: { id: true, username: true, displayName: true } } },
        },
      },
    }),
    db.$queryRawUnsafe<MessageRowWithSender[]>(
      `SELECT m.id::text, m.conversation_id::text, m.seq, m.sender_id::text, m.client_msg_id, m.content, m.created_at
         FROM conversations c JOIN messages m ON m.conversation_id = c.id AND m.seq = c.last_seq
        WHERE c.id = ANY($1::uuid[])`,
      conversationIds,
    ),
    // Unread = messages after the viewer's read marker that others sent (the contract's definition).
    db.$queryRawUnsafe<{ conversation_id: string; unread: number }[]>(
      `SELECT mb.conversation_id::text, count(m.id)::int AS unread
         FROM members mb
         JOIN messages m ON m.conversation_id = mb.conversation_id AND m.seq > mb.read_seq AND m.sender_id <> mb.user_id
        WHERE mb.user_id = $1::uuid AND mb.conversation_id = ANY($2::uuid[])
        GROUP BY mb.conversation_id`,
      viewerId,
      conversationIds,
    ),
  ]);
  const last = new Map<string, Message>(lastMessages.map((row) => [row.conversation_id, toMessage(row)]));
  const unreadBy = new Map(unread.map((row) => [row.conversation_id, Number(row.unread)]));

  for (const c of conversations) {
    const me = c.members.find((m) => m.userId === viewerId);
    views.set(c.id, {
      id: c.id,
      type: c.type,
      title: c.title,
      members: c.members.map((m) => ({
        id: m.user.id,
        username: m.user.username,
        displayName: m.user.displayName,
        role: m.role,
      })),
      lastSeq: c.lastSeq,
      lastMessage: last.get(c.id) ?? null,
      unreadCount: unreadBy.get(c.id) ?? 0,
      muted: me?.muted ?? false,
      createdAt: c.createdAt.toISOString(),
    });
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
  const [conversation, unread] = await Promise.all([
    db.conversation.findUnique({
      where: { id: conversationId },
      include: {
        members: {
          orderBy: { joinedAt: "asc" },
          include: { user: { select: { id: true, username: true, displayName: true } } },
        },
        messages: { orderBy: { seq: "desc" }, take: 1 },
      },
    }),
    db.$queryRawUnsafe<{ user_id: string; unread: number }[]>(
      `SELECT mb.user_id::text, count(m.id)::int AS unread
         FROM members mb
         JOIN messages m ON m.conversation_id = mb.conversation_id AND m.seq > mb.read_seq AND m.sender_id <> mb.user_id
        WHERE mb.conversation_id = $1::uuid
        GROUP BY mb.user_id`,
      conversationId,
    ),
  ]);
  if (conversation === null) return byMember;
  const unreadBy = new Map(unread.map((row) => [row.user_id, Number(row.unread)]));
  const lastRow = conversation.messages[0];
  const lastMessage: Message | null =
    lastRow === undefined
      ? null
      : {
          id: lastRow.id,
          conversationId: lastRow.conversationId,
          seq: lastRow.seq,
          senderId: lastRow.senderId,
          clientMsgId: lastRow.clientMsgId,
          content: lastRow.content,
          createdAt: lastRow.createdAt.toISOString(),
        };
  const members = conversation.members.map((m) => ({
    id: m.user.id,
    username: m.user.username,
    displayName: m.user.displayName,
    role: m.role,
  }));
  for (const m of conversation.members) {
    byMember.set(m.userId, {
      id: conversation.id,
      type: conversation.type,
      title: conversation.title,
      members,
      lastSeq: conversation.lastSeq,
      lastMessage,
      unreadCount: unreadBy.get(m.userId) ?? 0,
      muted: m.muted,
      createdAt: conversation.createdAt.toISOString(),
    });
  }
  return byMember;
}
