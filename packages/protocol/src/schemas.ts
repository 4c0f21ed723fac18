// Payload schemas shared by the HTTP routes and the socket events: one definition of what a valid request is.
import { z } from "zod";

const MAX_SEQ = 2_147_483_647;
// Control characters (C0 with tab and newlines, DEL, C1) and lone UTF-16 surrogates have no place in a name, a title,
// a search or a token: PostgreSQL refuses a NUL (the request would fail at the database, or fail a shared batch),
// a surrogate is stored as U+FFFD (no longer what the client sent), and the rest misrender in lists and logs.
const CONTROL = /[\p{Cc}\p{Cs}]/u;
const LONE_SURROGATE = /\p{Cs}/u;
/** The one rule for every free-text field (names, titles, device names, searches, push tokens and endpoints). */
export const noControlCharacters = (s: string): boolean => !CONTROL.test(s);
export const NO_CONTROL_CHARACTERS = "must not contain control characters";
/** Free text of `min` to `max` characters after trimming, without control characters. */
export const freeText = (max: number, min = 1) =>
  z.string().trim().min(min).max(max).refine(noControlCharacters, NO_CONTROL_CHARACTERS);

export const id = z.string().min(1).max(64);
export const seq = z.number().int().min(0).max(MAX_SEQ);
/** Query-string integers arrive as text; anything but plain digits is malformed. */
const queryInt = z
  .string()
  .regex(/^\d{1,10}$/, "must be a non-negative integer")
  .transform(Number)
  .pipe(seq);

export const username = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[a-z0-9_.-]{3,32}$/, "3 to 32 characters: letters, digits, '_', '.', '-'");
export const password = z.string().min(8, "at least 8 characters").max(256);
export const displayName = freeText(64);
const title = displayName;

export const RegisterBody = z.strictObject({ username, password, displayName: displayName.optional() });
export const LoginBody = z.strictObject({ username, password, deviceName: freeText(64, 0).optional() });
export const RefreshBody = z.strictObject({ refreshToken: z.string().min(1).max(512) });

export const UserSearchQuery = z.object({ query: freeText(32) });

export const CreateConversationBody = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("direct"), userId: id }),
  z.strictObject({ type: z.literal("group"), title, memberIds: z.array(id).max(10_000) }),
]);
export const AddMemberBody = z.strictObject({ userId: id });
export const SetRoleBody = z.strictObject({ role: z.enum(["admin", "member"]) });
export const UpdateConversationBody = z
  .strictObject({ muted: z.boolean().optional(), title: title.optional() })
  .refine((b) => b.muted !== undefined || b.title !== undefined, "muted or title is required");

export const PageQuery = z.object({
  limit: queryInt.pipe(z.number().min(1).max(100)).optional(),
  cursor: z.string().max(200).optional(),
});
/** GET /v1/search/messages: at most 200 characters of query, at most 50 results a page. */
export const SearchMessagesQuery = z.object({
  query: freeText(200),
  conversationId: id.optional(),
  limit: queryInt.pipe(z.number().min(1, "must be 1 to 50").max(50, "must be 1 to 50")).optional(),
  cursor: z.string().max(200).optional(),
});
export const HistoryQuery = z
  .object({
    before: queryInt.optional(),
    after: queryInt.optional(),
    limit: queryInt.pipe(z.number().min(1, "must be 1 to 100").max(100, "must be 1 to 100")).optional(),
  })
  .refine((q) => q.before === undefined || q.after === undefined, "use before or after, not both");

/**
 * content is a string without NUL and without lone UTF-16 surrogates (not text: PostgreSQL would store U+FFFD, so
 * the message kept would differ from the one acked); its length limit is checked by the domain (payload_too_large,
 * not bad_request). Newlines, tabs and other control characters are the sender's text and stay.
 */
const textContent = z
  .string()
  .refine((s) => !s.includes("\u0000"), "must not contain a NUL character")
  .refine((s) => !LONE_SURROGATE.test(s), "must not contain a lone UTF-16 surrogate");
export const content = textContent.refine((s) => s.trim().length > 0, "must not be empty");
// Printable ASCII without spaces: enough for UUIDs and any client's own scheme, and nothing the database could refuse
// (a NUL) or a log could misrender (control characters), so one client's odd id never reaches a shared batch.
/**
 * Printable: no control characters (NUL would fail the whole batch in PostgreSQL) and no lone UTF-16 surrogates
 * (stored as U+FFFD, they would no longer match the id the client retries with). Spaces and any script are fine.
 */
export const clientMsgId = z
  .string()
  .regex(/^[^\p{Cc}\p{Cs}]{1,128}$/u, "must be 1 to 128 printable characters (no control characters)");

/** Uploads (POST /v1/uploads) sent with a message: at most 10, each once. */
export const attachmentIds = z
  .array(z.string().max(64))
  .max(10, "at most 10 attachments")
  .refine((ids) => new Set(ids).size === ids.length, "each attachment at most once");
/** A message's text may be empty (or omitted) only when it carries attachments. */
const textOrFiles = <T extends { content?: string | undefined; attachmentIds?: string[] | undefined }>(m: T) =>
  (m.content ?? "").trim().length > 0 || (m.attachmentIds?.length ?? 0) > 0;
/** A send's content: the same rules as `content`, but it may be empty when the message carries attachments. */
const optionalContent = textContent;
const withContent = { message: "must not be empty", path: ["content"] };

export const SendBody = z
  .strictObject({
    clientMsgId,
    content: optionalContent.optional(),
    replyToId: id.optional(),
    attachmentIds: attachmentIds.optional(),
  })
  .refine(textOrFiles, withContent);
export const SendPayload = z
  .object({
    conversationId: id,
    clientMsgId,
    content: optionalContent.optional(),
    replyToId: id.optional(),
    attachmentIds: attachmentIds.optional(),
  })
  .refine(textOrFiles, withContent);
export const UploadBody = z.strictObject({
  name: freeText(255),
  mimeType: z
    .string()
    .max(255)
    .regex(/^[\w.+-]+\/[\w.+-]+$/, "must be a MIME type such as image/png"),
  size: z.number().int().min(1, "must be at least 1 byte"),
});
export const EditBody = z.strictObject({ content });
export const EditPayload = z.object({ conversationId: id, messageId: id, content });
export const MessageRefPayload = z.object({ conversationId: id, messageId: id });
/** The emoji itself is checked by the domain (chat/emoji.ts); here only its size. */
const emoji = z.string().min(1).max(32);
export const ReactPayload = z.object({ conversationId: id, messageId: id, emoji, on: z.boolean() });
/** A sync cursor: a seq (older clients), or a seq and a change cursor (README, "Sync"). */
const syncCursor = z.union([seq, z.strictObject({ seq, changes: seq })]);
export const MarkerPayload = z.object({ conversationId: id, seq });
export const ReadBody = z.strictObject({ seq });
export const TypingPayload = z.object({ conversationId: id, isTyping: z.boolean() });
export const SyncPayload = z.object({
  cursors: z.record(id, syncCursor).refine((c) => Object.keys(c).length <= 10_000, "at most 10000 cursors"),
  limit: z.number().int().min(1).max(1000).optional(),
});
export const PresenceSubscribePayload = z.object({ userIds: z.array(id).max(1000) });
export const AuthRefreshPayload = z.object({ token: z.string().min(1).max(4096) });

/** A report names exactly one of a message or a user, with a reason in free text. */
export const ReportBody = z
  .strictObject({ messageId: id.optional(), userId: id.optional(), reason: freeText(1000) })
  .refine((b) => (b.messageId === undefined) !== (b.userId === undefined), "exactly one of messageId or userId");

export const ReportStatusQuery = z.object({
  status: z.enum(["open", "resolved"]).optional(),
  limit: queryInt.pipe(z.number().min(1, "must be 1 to 100").max(100, "must be 1 to 100")).optional(),
  cursor: z.string().max(200).optional(),
});
export const ResolveReportBody = z.strictObject({ action: freeText(64).optional(), note: freeText(1000).optional() });
export const SuspendBody = z.strictObject({ reason: freeText(1000).optional() });
