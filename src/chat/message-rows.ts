// How a message row is read with raw SQL (the hot path and the sync queries), in one place.
import type { Message, Reaction, ReplyPreview } from "@chat-gateway/protocol";

/** How many code points of the answered message a reply carries. */
export const REPLY_PREVIEW_CHARS = 200;
/** How many user ids each reaction lists (its count is exact). */
export const REACTION_USER_IDS = 20;

// The answered message's preview and the reactions are read with the row, as scalar subqueries, so that every query
// that selects messages (history, sync, last message, a change's answer) shows them the same way without joining
// anything itself. Each subquery is one primary-key or index lookup per returned row. left() counts characters
// (code points in UTF-8), as the contract does.
const REPLY_PREVIEW = `(SELECT json_build_object('id', r.id::text, 'seq', r.seq, 'senderId', r.sender_id::text,
    'content', CASE WHEN r.deleted_at IS NULL THEN left(r.content, ${REPLY_PREVIEW_CHARS}) ELSE '' END)
    FROM messages r WHERE r.id = m.reply_to_id) AS reply_to`;
const REACTIONS = `(SELECT json_agg(json_build_object('emoji', x.emoji, 'count', x.n, 'userIds', x.user_ids)
    ORDER BY x.first_at, x.emoji)
    FROM (SELECT emoji, count(*)::int AS n, min(created_at) AS first_at,
                 (array_agg(user_id::text ORDER BY created_at, user_id))[1:${REACTION_USER_IDS}] AS user_ids
            FROM message_reactions WHERE message_id = m.id GROUP BY emoji) x) AS reactions`;

/** The select list for a `messages` table aliased `m`; ids come back as text. */
export const MESSAGE_COLUMNS = `m.id::text, m.conversation_id::text, m.seq, m.sender_id::text, m.client_msg_id,
  m.content, m.created_at, m.edited_at, m.deleted_at, m.change_seq, ${REPLY_PREVIEW}, ${REACTIONS}`;

export interface MessageRow {
  id: string;
  conversation_id: string;
  seq: number;
  sender_id: string;
  client_msg_id: string;
  content: string;
  created_at: Date;
  edited_at: Date | null;
  deleted_at: Date | null;
  change_seq: number;
  /** JSON: node-postgres parses it, some adapters hand it over as text. */
  reply_to: ReplyPreview | string | null;
  reactions: Reaction[] | string | null;
}

const json = <T>(value: T | string | null): T | null => (typeof value === "string" ? (JSON.parse(value) as T) : value);
const isoOrNull = (value: Date | string | null): string | null =>
  value === null ? null : new Date(value).toISOString();

export function toMessage(row: MessageRow): Message {
  const replyTo = json(row.reply_to);
  const deleted = row.deleted_at !== null;
  return {
    id: row.id,
    conversationId: row.conversation_id,
    seq: Number(row.seq),
    senderId: row.sender_id,
    clientMsgId: row.client_msg_id,
    // A tombstone never shows what it said, whatever the row still holds.
    content: deleted ? "" : row.content,
    createdAt: new Date(row.created_at).toISOString(),
    editedAt: isoOrNull(row.edited_at),
    deletedAt: isoOrNull(row.deleted_at),
    replyTo: replyTo === null ? null : { ...replyTo, seq: Number(replyTo.seq) },
    reactions: deleted ? [] : (json(row.reactions) ?? []),
    // Filled by the attachments module where the answer goes to members (history, sync).
    attachments: [],
    changeSeq: Number(row.change_seq),
  };
}

/** The fields a message has before anything changed it: what the send hot path fills in (fresh arrays each time). */
export function unchangedFields(): Pick<
  Message,
  "editedAt" | "deletedAt" | "replyTo" | "reactions" | "attachments" | "changeSeq"
> {
  return { editedAt: null, deletedAt: null, replyTo: null, reactions: [], attachments: [], changeSeq: 0 };
}
