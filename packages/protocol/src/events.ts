// The Socket.IO event contract, declared once as typed maps (ack shapes included) and used by the server, the SDK
// and the web page: `Server<ClientToServerEvents, ServerToClientEvents>` / `Socket<ServerToClientEvents, ...>`.
import type { Conversation, Message, PresenceState, WireError } from "./types.js";

export type Ack<T extends object = object> = (answer: ({ ok: true } & T) | { ok: false; error: WireError }) => void;
export type AckAnswer<T extends object = object> = Parameters<Ack<T>>[0];

export interface SendPayload {
  conversationId: string;
  clientMsgId: string;
  /** May be empty when attachmentIds are given. */
  content: string;
  /** The message this one answers (same conversation). */
  replyToId?: string;
  /** Uploads of the sender (POST /v1/uploads): at most 10, each attached once. */
  attachmentIds?: string[];
}
export interface EditPayload {
  conversationId: string;
  messageId: string;
  content: string;
}
export interface MessageRefPayload {
  conversationId: string;
  messageId: string;
}
export interface ReactPayload {
  conversationId: string;
  messageId: string;
  /** One emoji grapheme. */
  emoji: string;
  /** true adds the caller's reaction, false removes it; repeating either changes nothing. */
  on: boolean;
}
/**
 * A conversation's sync cursor: the last seq seen (older clients), or that and the last change number applied
 * (`changes`), which also asks for the messages changed since (README, "Sync").
 */
export type SyncCursor = number | { seq: number; changes: number };
export interface MarkerPayload {
  conversationId: string;
  seq: number;
}
export interface TypingPayload {
  conversationId: string;
  isTyping: boolean;
}
export interface SyncPayload {
  /** conversationId -> cursor; an unlisted conversation counts as 0. */
  cursors: Record<string, SyncCursor>;
  /** Caps the messages of the whole answer (default 500, at most 1000). */
  limit?: number;
}
export interface SyncResult {
  conversations: Conversation[];
  messages: Message[];
  /**
   * For object cursors: messages at or below the cursor's seq changed after its change number, as they are now,
   * ascending by changeSeq within a conversation. Apply each one whose changeSeq is above the copy held.
   */
  changes: Message[];
  /** conversationId -> the change number the client may store in its cursor once it applied this answer. */
  changeCursors: Record<string, number>;
  hasMore: boolean;
}

export interface ClientToServerEvents {
  "message:send": (payload: SendPayload, ack: Ack<{ message: Message }>) => void;
  "message:read": (payload: MarkerPayload, ack: Ack) => void;
  "message:delivered": (payload: MarkerPayload, ack: Ack) => void;
  typing: (payload: TypingPayload, ack: Ack) => void;
  sync: (payload: SyncPayload, ack: Ack<SyncResult>) => void;
  "message:edit": (payload: EditPayload, ack: Ack<{ message: Message }>) => void;
  "message:delete": (payload: MessageRefPayload, ack: Ack<{ message: Message }>) => void;
  "message:react": (payload: ReactPayload, ack: Ack<{ message: Message }>) => void;
  "presence:subscribe": (payload: { userIds: string[] }, ack: Ack<{ presence: Record<string, PresenceState> }>) => void;
  "auth:refresh": (payload: { token: string }, ack: Ack<{ expiresAt: string }>) => void;
}

export interface MarkerEvent {
  conversationId: string;
  userId: string;
  seq: number;
}

/** `[seq, members]` pairs, highest seq first: how many members' marker is at or past each seq. */
export type MarkerCounts = [seq: number, membersAtOrPast: number][];

/**
 * Read and delivery markers of a conversation with more than RECEIPTS_PER_MEMBER_MAX_MEMBERS members, gathered over
 * RECEIPTS_FLUSH_MS and sent once per window per gateway pod to every member together. Two shapes:
 * - up to RECEIPTS_DETAIL_MAX_MEMBERS members, `read` and `delivered` map userId -> the marker's new seq, for the
 *   markers that moved in the window only (a marker never moves back, so keep the highest seen);
 * - larger conversations get counts instead, so the payload does not grow with the group: `readCounts` and
 *   `deliveredCounts` for the highest distinct marker values (at most 50), counting every member, the sender of a
 *   message included (sending moves one's own read marker). A member who has read a message has also received it,
 *   so `deliveredCounts` counts the higher of each member's two markers. Each event is the state at that moment:
 *   it replaces the previous one, values missing below the lowest listed seq are at least that seq's count.
 */
export type MarkersEvent =
  | { conversationId: string; read: Record<string, number>; delivered: Record<string, number> }
  | { conversationId: string; readCounts: MarkerCounts; deliveredCounts: MarkerCounts };

/**
 * `message:updated`: the whole message after one or more changes; its changeSeq orders the changes of its
 * conversation. An event for a single change is exactly the message object. Reactions to one message are coalesced
 * per pod and window (REACTIONS_FLUSH_MS): such an event is the state after the newest of them and also lists, in
 * `changeRanges`, every change number it stands for (ascending inclusive `[from, to]` ranges, the last ending at
 * `changeSeq`), so clients count all of them toward their change cursor. Clients that ignore the field only see fewer
 * intermediate states.
 */
export type MessageUpdate = Message & { changeRanges?: [from: number, to: number][] };

export interface ServerToClientEvents {
  "message:new": (message: Message) => void;
  /** A message after an edit, deletion or reaction(s); see MessageUpdate. */
  "message:updated": (message: MessageUpdate) => void;
  "conversation:read": (event: MarkerEvent) => void;
  "conversation:delivered": (event: MarkerEvent) => void;
  /** Receipts of a larger conversation, coalesced (see MarkersEvent). Small ones keep the two events above. */
  "conversation:markers": (event: MarkersEvent) => void;
  "conversation:updated": (event: { conversation: Conversation }) => void;
  typing: (event: { conversationId: string; userId: string; isTyping: boolean }) => void;
  presence: (event: { userId: string } & PresenceState) => void;
  "auth:expiring": (event: { expiresAt: string }) => void;
  /**
   * Live delivery may have missed this socket (its pod lost Redis for a while): run `sync` with the current cursors.
   */
  "sync:required": () => void;
  /** Sent before the server disconnects a socket on purpose, so the client knows whether to reconnect. */
  "session:ended": (event: {
    reason: "token_expired" | "logged_out" | "revoked" | "draining" | "too_many_sockets" | "suspended";
  }) => void;
}

/** The room every socket of a user joins; the only room another user can address. */
export const userRoom = (userId: string): string => `user:${userId}`;
