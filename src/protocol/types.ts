// The wire contract's data shapes (../shared/CONTRACT.md), shared by the server, the client SDK and the web page.
// Nothing here imports Node or server code: the browser bundle includes this file.

export type ErrorCode =
  | "bad_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "payload_too_large"
  | "rate_limited"
  | "unavailable"
  | "internal";

export interface WireError {
  code: ErrorCode;
  message: string;
  details?: unknown;
}

export interface PublicUser {
  id: string;
  username: string;
  displayName: string;
}

export interface ConversationMember extends PublicUser {
  role: "admin" | "member";
  /** Highest seq this member has read (any device): lets a client that just loaded show "read" marks. */
  readSeq: number;
  /** Highest seq any device of this member has acknowledged as delivered. */
  deliveredSeq: number;
}

export interface Message {
  id: string;
  conversationId: string;
  seq: number;
  senderId: string;
  clientMsgId: string;
  content: string;
  createdAt: string;
}

/**
 * A direct conversation opened by `requestedBy` is a message request to the other member until that one replies or
 * accepts (`POST /v1/conversations/:id/accept`). While `pending`, the requester sees none of the recipient's presence,
 * typing or read/delivered markers (their `readSeq`/`deliveredSeq` read 0 for the requester).
 */
export interface MessageRequest {
  state: "pending" | "accepted";
  requestedBy: string;
}

export interface Conversation {
  id: string;
  type: "direct" | "group";
  title: string | null;
  members: ConversationMember[];
  lastSeq: number;
  lastMessage: Message | null;
  unreadCount: number;
  muted: boolean;
  createdAt: string;
  /** Null for groups and for direct conversations from before message requests (they count as accepted). */
  request: MessageRequest | null;
}

export interface AuthResult {
  user: PublicUser;
  accessToken: string;
  refreshToken: string;
  /** Access token lifetime in seconds. */
  expiresIn: number;
}

export interface PresenceState {
  online: boolean;
  lastSeenAt: string | null;
}
