// What the HTTP routes answer, as zod schemas: they document the answers in the OpenAPI document (docs/openapi.json)
// and, in the in-process tests, check every answer against that document (zod-schemas.ts). The wire shapes an answer
// shares with the Socket.IO API (Message, Conversation, PublicUser, ConversationMember, Attachment, the error envelope)
// are defined once, in @chat-gateway/protocol/shapes (packages/protocol/src/shapes.ts, strict objects); this file
// names them as OpenAPI components and adds what only HTTP answers (AuthResult, UploadTicket) and the server-only
// shapes (reports, suspensions, the audit log, readiness). Each is declared against the wire type it describes
// (`z.ZodType<Message>`), so a field added to the type without its schema does not compile.
// The request schemas are those of @chat-gateway/protocol/schemas (packages/protocol/src/schemas.ts), the ones the routes validate with.
import { z } from "zod";
import type * as T from "@chat-gateway/protocol";
import { ERROR_STATUS, type ErrorCode } from "@chat-gateway/protocol";
import * as shapes from "@chat-gateway/protocol/shapes";
import type { ReportView } from "../safety/reports.js";
import type { SuspensionView } from "../safety/suspensions.js";
import type { AuditRecord } from "../safety/audit.js";

const time = z.string().describe("ISO 8601 timestamp, UTC");

/**
 * Names a protocol shape as an OpenAPI component. The shape itself is registered in zod's global registry (which
 * fastify-type-provider-zod reads), not a `.meta()` copy: a copy would leave the shapes nested in others (Message in
 * Conversation) unnamed, written out in full there instead of referring to the component. Its description stays.
 */
function component<S extends z.ZodType>(shape: S, id: string): S {
  z.globalRegistry.add(shape, { ...z.globalRegistry.get(shape), id });
  return shape;
}

export const ErrorAnswer = z
  .strictObject({ error: shapes.WireError })
  .meta({ id: "Error", description: "The contract's error envelope (README, Errors)" });

export const PublicUserSchema = component(shapes.PublicUser, "PublicUser") satisfies z.ZodType<T.PublicUser>;
// No route answers a member alone: named for the document, where Conversation refers to it.
component(shapes.ConversationMember, "ConversationMember") satisfies z.ZodType<T.ConversationMember>;
export const AttachmentSchema = component(shapes.Attachment, "Attachment") satisfies z.ZodType<T.Attachment>;
export const MessageSchema = component(shapes.Message, "Message") satisfies z.ZodType<T.Message>;
export const ConversationSchema = component(shapes.Conversation, "Conversation") satisfies z.ZodType<T.Conversation>;

export const AuthResultSchema = z
  .strictObject({
    user: PublicUserSchema,
    accessToken: z.string(),
    refreshToken: z.string(),
    expiresIn: z.number().int().describe("access token lifetime, seconds"),
  })
  .meta({ id: "AuthResult" }) satisfies z.ZodType<T.AuthResult>;

export const UploadTicketSchema = z
  .strictObject({
    id: z.string(),
    url: z.string().describe("where to PUT the bytes; may be relative to the gateway"),
    method: z.literal("PUT"),
    headers: z.record(z.string(), z.string()),
    expiresAt: time,
  })
  .meta({ id: "UploadTicket" }) satisfies z.ZodType<T.UploadTicket>;

export const ReportSchema = z
  .strictObject({
    id: z.string(),
    status: z.enum(["open", "resolved"]),
    reason: z.string(),
    reporterId: z.string(),
    targetUserId: z.string(),
    conversationId: z.string().nullable(),
    message: z.strictObject({ id: z.string(), senderId: z.string(), content: z.string(), createdAt: time }).nullable(),
    createdAt: time,
    resolution: z
      .strictObject({ at: time, by: z.string(), action: z.string().nullable(), note: z.string().nullable() })
      .nullable(),
  })
  .meta({ id: "Report" }) satisfies z.ZodType<ReportView>;

export const SuspensionSchema = z
  .strictObject({
    revokedSessions: z.number().int().optional().describe("logins revoked by this call (suspend only)"),
    id: z.string(),
    username: z.string(),
    suspendedAt: time.nullable(),
    suspendedReason: z.string().nullable(),
  })
  .meta({ id: "Suspension" }) satisfies z.ZodType<SuspensionView>;

export const AuditRecordSchema = z
  .strictObject({
    id: z.string(),
    actor: z.strictObject({ keyId: z.string(), name: z.string() }),
    action: z.string(),
    target: z.strictObject({ type: z.string(), id: z.string() }),
    details: z.unknown(),
    createdAt: time,
  })
  .meta({ id: "AuditRecord" }) satisfies z.ZodType<AuditRecord>;

export const ReadinessSchema = z.strictObject({
  ready: z.boolean(),
  checks: z.record(z.string(), z.boolean()).describe("each dependency and the pod's own state"),
});

/** Path parameters: documented as strings; what they name is looked up (unknown is `not_found`). */
export const pathParams = <K extends string>(...names: K[]) =>
  z.strictObject(Object.fromEntries(names.map((n) => [n, z.string()])) as Record<K, z.ZodString>);

type Status = 200 | 201 | 204;
/** An answer in another content type than JSON, as OpenAPI writes it. */
interface ContentAnswer {
  description: string;
  content: Record<string, { schema: z.ZodType }>;
}
/** A success answer: a JSON schema, a described answer of another type, or the description of an empty one (204). */
type Success = Partial<Record<Status, z.ZodType | ContentAnswer | string>>;

/**
 * The `response` part of a route schema: its success answers and the error codes it can answer (every /v1 route
 * adds `unauthorized`, `rate_limited`, `unavailable` and `internal` through `withBearer`). Each error status
 * documents the contract's envelope and which codes it carries.
 */
export function answers(success: Success, errors: readonly ErrorCode[]) {
  const response: Record<number, unknown> = {};
  for (const [status, schema] of Object.entries(success)) {
    response[Number(status)] =
      // An empty answer: a `null` schema is how @fastify/swagger writes a response without content.
      typeof schema === "string"
        ? z.null().describe(schema)
        : schema instanceof z.ZodType
          ? { description: schema.description ?? "success", content: { "application/json": { schema } } }
          : schema;
  }
  const byStatus = new Map<number, ErrorCode[]>();
  // Every route can answer `bad_request` (a malformed query string is refused before any route) and `internal`.
  for (const code of new Set<ErrorCode>(["bad_request", ...errors, "internal"])) {
    const status = ERROR_STATUS[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
    response[status] = {
      description: codes.map((c) => `\`${c}\``).join(", "),
      content: { "application/json": { schema: ErrorAnswer } },
    };
  }
  return response;
}

/** Codes every route behind the bearer authenticator can answer (no or bad token, per-user limit, dependency down). */
export const BEARER_ERRORS = ["unauthorized", "rate_limited", "unavailable"] as const satisfies ErrorCode[];

/** The OpenAPI security requirement of the /v1 routes behind the authenticator. */
export const bearer: { bearerAuth: never[] }[] = [{ bearerAuth: [] }];

export type Tag =
  | "auth"
  | "users"
  | "conversations"
  | "messages"
  | "attachments"
  | "search"
  | "push"
  | "safety"
  | "admin"
  | "files"
  | "operations";

interface Parts {
  params?: z.ZodType;
  querystring?: z.ZodType;
  body?: z.ZodType;
  description?: string;
}

/** A route's schema: its input parts (validated), its answers (documented) and its place in the document. */
export function operation<P extends Parts>(
  tag: Tag,
  summary: string,
  parts: P,
  success: Success,
  errors: readonly ErrorCode[],
  security: { bearerAuth: never[] }[] = [],
) {
  return { summary, tags: [tag], security, ...parts, response: answers(success, errors) };
}

/** A /v1 route behind the bearer authenticator: its errors include BEARER_ERRORS. */
export function bearerOperation<P extends Parts>(
  tag: Tag,
  summary: string,
  parts: P,
  success: Success,
  errors: readonly ErrorCode[],
) {
  return operation(tag, summary, parts, success, [...BEARER_ERRORS, ...errors], bearer);
}
