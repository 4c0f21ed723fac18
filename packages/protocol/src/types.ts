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
  /** Null until edited. */
  editedAt: string | null;
  /** Null until deleted; a deleted message is a tombstone: content "", no reactions, no attachments. */
  deletedAt: string | null;
  /** The message answered, or null. */
  replyTo: ReplyPreview | null;
  /** One entry per emoji, in the order each emoji was first used. */
  reactions: Reaction[];
  /** Files sent with the message (`[]` when none); their URLs are short-lived and issued per answer. */
  attachments: Attachment[];
  /**
   * The conversation's change counter at this message's last edit, deletion or reaction (0: never changed). Of two
   * copies of a message, the one with the higher changeSeq is newer; sync cursors use it (README, "Sync").
   */
  changeSeq: number;
}

/** The answered message as a reply shows it: content cut to 200 code points, "" once that message is deleted. */
export interface ReplyPreview {
  id: string;
  seq: number;
  senderId: string;
  content: string;
}

export interface Reaction {
  emoji: string;
  count: number;
  /** At most the first 20 who reacted. */
  userIds: string[];
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

/**
 * A direct conversation opened by `requestedBy` is a message request to the other member until that one replies or
 * accepts (`POST /v1/conversations/:id/accept`). While `pending`, the requester sees none of the recipient's presence,
 * typing or read/delivered markers (their `readSeq`/`deliveredSeq` read 0 for the requester).
 */
export interface MessageRequest {
  state: "pending" | "accepted";
  requestedBy: string;
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
