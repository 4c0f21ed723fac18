// How a message row is read with raw SQL (the hot path and the sync queries), in one place.
import type { Message } from "../protocol/types.js";

/** The select list for a `messages` table aliased `m`; ids come back as text. */
export const MESSAGE_COLUMNS =
  "m.id::text, m.conversation_id::text, m.seq, m.sender_id::text, m.client_msg_id, m.content, m.created_at";

export interface MessageRow {
  id: string;
  conversation_id: string;
  seq: number;
  sender_id: string;
  client_msg_id: string;
  content: string;
  created_at: Date;
}

export function toMessage(row: MessageRow): Message {
  return {
    id: row.id,
    conversationId: row.conversation_id,
    seq: Number(row.seq),
    senderId: row.sender_id,
    clientMsgId: row.client_msg_id,
    content: row.content,
    createdAt: new Date(row.created_at).toISOString(),
    // Filled by the attachments module where the answer goes to members (history, sync).
    attachments: [],
  };
}
