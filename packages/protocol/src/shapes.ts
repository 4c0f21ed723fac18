// What the gateway sends, as zod schemas: the data shapes of types.ts and the event and ack payloads of events.ts.
// The requests a client sends are validated by schemas.ts; these describe the answers and the server's events. They
// are the one definition of each shape on both transports: scripts/asyncapi.ts documents the Socket.IO API with them
// (docs/asyncapi.yaml), and the gateway's HTTP answers reuse them (src/http/api-schemas.ts names them as OpenAPI
// components and, in the in-process tests, checks every answer against them). The objects are strict: they describe
// exactly what the gateway sends, so an unknown key is an error, not an extension. The checks at the bottom make the
// TypeScript types and these schemas agree: a field added to one and not the other fails the type-check.
import { z } from "zod";
import type { ErrorCode as ErrorCodeType, WireError as WireErrorType } from "./types.js";
import type * as T from "./types.js";
import type * as E from "./events.js";
import { ERROR_STATUS } from "./errors.js";

const isoTime = z.string().describe("ISO 8601 timestamp, UTC");
const int = z.number().int().min(0);

export const ErrorCode = z
  .enum(Object.keys(ERROR_STATUS) as [ErrorCodeType, ...ErrorCodeType[]])
  .describe("The contract's error codes; the README's error table gives the HTTP status of each.");
export const WireError = z
  .strictObject({
    code: ErrorCode,
    message: z.string(),
    details: z
      .unknown()
      .optional()
      .describe("`[{field, problem}]` for validation errors; `{retryAfterMs}` for rate_limited and unavailable."),
  })
  .describe("The error envelope: a contract code (its HTTP status is in the README's error table) and a message.");

export const PublicUser = z.strictObject({ id: z.string(), username: z.string(), displayName: z.string() });
export const ConversationMember = PublicUser.extend({
  role: z.enum(["admin", "member"]),
  readSeq: int.describe("Highest seq this member has read (any device)."),
  deliveredSeq: int.describe("Highest seq any device of this member has acknowledged as delivered."),
});
export const ReplyPreview = z
  .strictObject({ id: z.string(), seq: int, senderId: z.string(), content: z.string() })
  .describe('The answered message: content cut to 200 code points, "" once that message is deleted.');
export const Reaction = z.strictObject({
  emoji: z.string(),
  count: int,
  userIds: z.array(z.string()).describe("At most the first 20 who reacted."),
});
export const Attachment = z
  .strictObject({
    id: z.string(),
    name: z.string(),
    mimeType: z.string(),
    size: int,
    url: z.string().describe("Short-lived download URL, possibly relative to the gateway."),
    width: int.optional(),
    height: int.optional(),
    thumbnailUrl: z.string().optional(),
  })
  .describe("A file of a message.");
export const Message = z.strictObject({
  id: z.string(),
  conversationId: z.string(),
  seq: int.describe("Gapless, per conversation, in commit order."),
  senderId: z.string(),
  clientMsgId: z.string(),
  content: z.string(),
  createdAt: isoTime,
  editedAt: isoTime.nullable().describe("Null until edited."),
  deletedAt: isoTime
    .nullable()
    .describe('Null until deleted; a deleted message is a tombstone: content "", no reactions, no attachments.'),
  replyTo: ReplyPreview.nullable(),
  reactions: z.array(Reaction).describe("One entry per emoji, in the order each emoji was first used."),
  attachments: z.array(Attachment).describe("Files sent with the message (`[]` when none)."),
  changeSeq: int.describe("The conversation's change counter at this message's last change (0: never changed)."),
});
export const MessageUpdate = Message.extend({
  changeRanges: z
    .array(z.tuple([int, int]))
    .optional()
    .describe(
      "Coalesced reactions: every change number this event stands for, as ascending [from, to] ranges ending at changeSeq; absent when it stands for changeSeq alone.",
    ),
});
export const MessageRequest = z.strictObject({ state: z.enum(["pending", "accepted"]), requestedBy: z.string() });
export const Conversation = z.strictObject({
  id: z.string(),
  type: z.enum(["direct", "group"]),
  title: z.string().nullable(),
  members: z.array(ConversationMember),
  lastSeq: int,
  lastMessage: Message.nullable(),
  unreadCount: int,
  muted: z.boolean(),
  createdAt: isoTime,
  request: MessageRequest.nullable().describe("A direct conversation that is (or was) a message request."),
});
export const PresenceState = z.strictObject({ online: z.boolean(), lastSeenAt: isoTime.nullable() });

// An ack result, so an open object like those below.
export const SyncResult = z.object({
  conversations: z.array(Conversation),
  messages: z.array(Message),
  changes: z.array(Message).describe("Messages at or below an object cursor's seq changed after its change number."),
  changeCursors: z.record(z.string(), int).describe("conversationId -> the change number to store in its cursor."),
  hasMore: z.boolean(),
});
export const MarkerEvent = z.strictObject({ conversationId: z.string(), userId: z.string(), seq: int });
const MarkerCounts = z
  .array(z.tuple([int, int]))
  .describe("[seq, members at or past it] pairs, highest seq first (at most 50).");
export const MarkersEvent = z
  .union([
    z.strictObject({
      conversationId: z.string(),
      read: z.record(z.string(), int),
      delivered: z.record(z.string(), int),
    }),
    z.strictObject({ conversationId: z.string(), readCounts: MarkerCounts, deliveredCounts: MarkerCounts }),
  ])
  .describe("Coalesced receipts of a larger conversation: per member up to a size, counts beyond.");
export const ConversationUpdatedEvent = z.strictObject({ conversation: Conversation });
export const TypingEvent = z.strictObject({ conversationId: z.string(), userId: z.string(), isTyping: z.boolean() });
export const PresenceEvent = PresenceState.extend({ userId: z.string() });
export const AuthExpiringEvent = z.strictObject({ expiresAt: isoTime });
export const SessionEndedEvent = z.strictObject({
  reason: z.enum(["token_expired", "logged_out", "revoked", "draining", "too_many_sockets", "suspended"]),
});

/**
 * The result half of each ack (`{ok: true, ...result}`); the failure half is always `{ok: false, error}`. Open
 * objects, unlike the shapes they carry: the AsyncAPI document writes an ack as allOf [AckOk, result], which a closed
 * result (`additionalProperties: false`) would refuse for its `ok`.
 */
export const MessageResult = z.object({ message: Message });
export const EmptyResult = z.object({});
export const PresenceResult = z.object({ presence: z.record(z.string(), PresenceState) });
export const AuthRefreshResult = z.object({ expiresAt: isoTime });

// ---- the types and the schemas agree (compile-time only) ----
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Payload<F> = F extends (payload: infer P, ...rest: never[]) => void ? P : never;
type Result<F> = F extends (payload: never, ack: E.Ack<infer R>) => void ? R : never;
type ServerEvent<K extends keyof E.ServerToClientEvents> = Payload<E.ServerToClientEvents[K]>;
type ClientAck<K extends keyof E.ClientToServerEvents> = Result<E.ClientToServerEvents[K]>;
const agree = <A, B>(same: Same<A, B>): Same<A, B> => same;
export const typesAgree = [
  agree<z.infer<typeof WireError>, WireErrorType>(true),
  agree<z.infer<typeof Message>, T.Message>(true),
  agree<z.infer<typeof Conversation>, T.Conversation>(true),
  agree<z.infer<typeof SyncResult>, E.SyncResult>(true),
  agree<z.infer<typeof MarkersEvent>, E.MarkersEvent>(true),
  agree<z.infer<typeof MarkerEvent>, ServerEvent<"conversation:read">>(true),
  agree<z.infer<typeof ConversationUpdatedEvent>, ServerEvent<"conversation:updated">>(true),
  agree<z.infer<typeof TypingEvent>, ServerEvent<"typing">>(true),
  agree<z.infer<typeof PresenceEvent>, ServerEvent<"presence">>(true),
  agree<z.infer<typeof AuthExpiringEvent>, ServerEvent<"auth:expiring">>(true),
  agree<z.infer<typeof SessionEndedEvent>, ServerEvent<"session:ended">>(true),
  agree<z.infer<typeof Message>, ServerEvent<"message:new">>(true),
  agree<z.infer<typeof MessageUpdate>, ServerEvent<"message:updated">>(true),
  agree<z.infer<typeof MessageResult>, ClientAck<"message:send">>(true),
  agree<z.infer<typeof SyncResult>, ClientAck<"sync">>(true),
  agree<z.infer<typeof PresenceResult>, ClientAck<"presence:subscribe">>(true),
  agree<z.infer<typeof AuthRefreshResult>, ClientAck<"auth:refresh">>(true),
] as const;
