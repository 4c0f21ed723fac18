// @chat-gateway/sdk: the SDK for web, React Native and Node apps. Depends only on socket.io-client and the
// protocol types, so it bundles for the browser as is.
export {
  ChatClient,
  type ChatClientErrorEvent,
  type ChatClientEvents,
  type ChatClientOptions,
  type ConnectionState,
} from "./chat-client.js";
export {
  ChatHttpApi,
  errorFromResponse,
  type AuthSession,
  type ChatHttpApiOptions,
  type ConversationPage,
  type MessagePage,
  type MessageQuery,
  type MessageSearchPage,
  type MessageSearchQuery,
} from "./http-api.js";
export { ChatApiError, isPermanent, type ChatErrorCode, type LocalErrorCode } from "./errors.js";
export {
  MemoryCursorStorage,
  MemoryOutboxStorage,
  type CursorStorage,
  type Cursors,
  type OutboxEntry,
  type OutboxStorage,
} from "./storage.js";
export {
  refreshDelayMs,
  type AuthTokens,
  type SignedOutReason,
  type TokenProvider,
  type TokenSource,
} from "./token-manager.js";
export { TypedEmitter, type Listener } from "./emitter.js";
export { MessageSequencer, type Gap } from "./message-sequencer.js";
export { ChangeQueue, ChangeTracker, replyPreviewOf, withHeldPreview, type ChangeRequest } from "./message-changes.js";
export { Outbox, type OutboxOptions } from "./outbox.js";
export { backoffDelay, retryDelay, type BackoffOptions } from "./backoff.js";
export { createClientMsgId } from "./ids.js";
export { uploadFile, type UploadedFile, type UploadOptions, type UploadSource } from "./uploads.js";
export type {
  Attachment,
  Conversation,
  ConversationMember,
  Message,
  PresenceState,
  PublicUser,
  Reaction,
  ReplyPreview,
  UploadTicket,
} from "@chat-gateway/protocol";
export type { MarkerCounts, MarkerEvent, MarkersEvent } from "@chat-gateway/protocol";
