// The operator API under /v1/admin: reports, suspensions, deleting any message and the audit log. Only service tokens with
// `role: "admin"`, which only a SERVICE_KEYS key marked admin can sign; user tokens and plain service tokens are
// `forbidden`, no token `unauthorized` (the /v1 authenticator). Every action writes an audit row with the key and
// name of the token, in the same transaction as the action.
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { deleteMessage, type MessageChanges } from "../../chat/message-changes.js";
import { PageQuery, ReportStatusQuery, ResolveReportBody, SuspendBody } from "@chat-gateway/protocol/schemas";
import { forbidden } from "../../errors.js";
import type { AdminActor, AuditLog } from "../../safety/audit.js";
import type { Reports } from "../../safety/reports.js";
import type { Suspensions } from "../../safety/suspensions.js";
import {
  AuditRecordSchema,
  bearerOperation,
  MessageSchema,
  pathParams,
  ReportSchema,
  SuspensionSchema,
} from "../api-schemas.js";
import { callerOf } from "../authenticate.js";

export interface AdminRouteDeps {
  reports: Reports;
  suspensions: Suspensions;
  audit: AuditLog;
  /** Message changes, for the operator's deletion (deleteMessage). */
  changes: MessageChanges;
}

/** The admin behind the request; anyone else is `forbidden`. */
export function adminOf(request: FastifyRequest): AdminActor {
  const caller = callerOf(request);
  if (caller.role !== "admin" || caller.keyId === undefined) throw forbidden("an admin token is required");
  return { keyId: caller.keyId, name: caller.userId };
}

/**
 * preValidation hook of every admin route: anyone but an admin is `forbidden` before their input is looked at (a user
 * token with a malformed query is `forbidden`, not `bad_request`).
 */
async function requireAdmin(request: FastifyRequest): Promise<void> {
  adminOf(request);
}

const byId = pathParams("id");
const page = <T extends z.ZodType>(key: string, item: T) =>
  z.strictObject({ [key]: z.array(item), nextCursor: z.string().nullable() });
export function adminRoutes(instance: FastifyInstance, deps: AdminRouteDeps): void {
  const app = instance.withTypeProvider<ZodTypeProvider>();
  const only = { preValidation: requireAdmin };

  const reports = bearerOperation(
    "admin",
    "Reports, newest first, by status",
    { querystring: ReportStatusQuery },
    { 200: page("reports", ReportSchema) },
    ["forbidden"],
  );
  app.get("/v1/admin/reports", { ...only, schema: reports }, async (request) => {
    const query = request.query;
    return deps.reports.list({ status: query.status, limit: query.limit ?? 50, cursor: query.cursor });
  });

  const resolve = bearerOperation(
    "admin",
    "Resolve a report",
    { params: byId, body: ResolveReportBody.optional() },
    { 200: z.strictObject({ report: ReportSchema }) },
    ["forbidden", "not_found", "conflict", "payload_too_large"],
  );
  app.post("/v1/admin/reports/:id/resolve", { ...only, schema: resolve }, async (request) => {
    const actor = adminOf(request);
    return { report: await deps.reports.resolve(actor, request.params.id, request.body ?? {}) };
  });

  const suspend = bearerOperation(
    "admin",
    "Suspend a user: their logins are revoked and their sockets disconnected",
    { params: byId, body: SuspendBody.optional() },
    { 200: z.strictObject({ user: SuspensionSchema }) },
    ["forbidden", "not_found", "payload_too_large"],
  );
  app.post("/v1/admin/users/:id/suspend", { ...only, schema: suspend }, async (request) => {
    const actor = adminOf(request);
    return { user: await deps.suspensions.suspend(actor, request.params.id, request.body?.reason) };
  });

  const lift = bearerOperation(
    "admin",
    "Lift a user's suspension",
    { params: byId },
    { 200: z.strictObject({ user: SuspensionSchema }) },
    ["forbidden", "not_found"],
  );
  app.delete("/v1/admin/users/:id/suspend", { ...only, schema: lift }, async (request) => {
    const actor = adminOf(request);
    return { user: await deps.suspensions.lift(actor, request.params.id) };
  });

  const audit = bearerOperation(
    "admin",
    "The audit log of admin actions, newest first",
    { querystring: PageQuery },
    { 200: page("entries", AuditRecordSchema) },
    ["forbidden"],
  );
  app.get("/v1/admin/audit", { ...only, schema: audit }, async (request) => {
    const { limit, cursor } = request.query;
    return deps.audit.list(limit ?? 50, cursor);
  });

  // An operator deletes any message: the same tombstone and `message:updated` as a member's deletion, with the audit
  // row in the deleting transaction. Unknown (or not in that conversation) is `not_found`.
  const deleteAny = bearerOperation(
    "admin",
    "Delete any message (a tombstone, audited)",
    { params: pathParams("id", "messageId") },
    { 200: z.strictObject({ message: MessageSchema }) },
    ["forbidden", "not_found"],
  );
  app.delete("/v1/admin/conversations/:id/messages/:messageId", { ...only, schema: deleteAny }, async (request) => {
    const actor = adminOf(request);
    const ref = { conversationId: request.params.id, messageId: request.params.messageId };
    const message = await deleteMessage(deps.changes, {
      ...ref,
      actorId: null,
      asModerator: true,
      inTransaction: (sql) =>
        deps.audit.recordSql(
          actor,
          {
            action: "message.delete",
            targetType: "message",
            targetId: ref.messageId,
            details: { conversationId: ref.conversationId },
          },
          sql,
        ),
    });
    return { message };
  });
}
