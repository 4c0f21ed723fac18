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
  /** Files sent with the message (`[]` when none); their URLs are short-lived and issued per answer. */
  attachments: Attachment[];
}

/** A file of a message. `url` and `thumbnailUrl` are short-lived download URLs (possibly relative to the gateway). */
export interface Attachment {
  id: string;
  name: string;
  mimeType: string;
  size: number;
  url: string;
  width?: number;
  height?: number;
  thumbnailUrl?: string;
}

/** Where and how to send the bytes of a new upload (POST /v1/uploads). */
export interface UploadTicket {
  id: string;
  /** May be relative to the gateway (embedded storage). */
  url: string;
  method: "PUT";
  /** Headers the PUT must carry (the signed content type). */
  headers: Record<string, string>;
  expiresAt: string;
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
