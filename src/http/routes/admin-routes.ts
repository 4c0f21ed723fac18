// The operator API under /v1/admin: reports, suspensions and the audit log. Only service tokens with
// `role: "admin"`, which only a SERVICE_KEYS key marked admin can sign; user tokens and plain service tokens are
// `forbidden`, no token `unauthorized` (the /v1 authenticator). Every action writes an audit row with the key and
// name of the token, in the same transaction as the action.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { PageQuery, ReportStatusQuery, ResolveReportBody, SuspendBody } from "../../chat/schemas.js";
import { forbidden } from "../../errors.js";
import type { AdminActor, AuditLog } from "../../safety/audit.js";
import type { Reports } from "../../safety/reports.js";
import type { Suspensions } from "../../safety/suspensions.js";
import { callerOf } from "../authenticate.js";
import { optionalBody } from "../optional-body.js";

export interface AdminRouteDeps {
  reports: Reports;
  suspensions: Suspensions;
  audit: AuditLog;
}

/** The admin behind the request; anyone else is `forbidden`. */
export function adminOf(request: FastifyRequest): AdminActor {
  const caller = callerOf(request);
  if (caller.role !== "admin" || caller.keyId === undefined) throw forbidden("an admin token is required");
  return { keyId: caller.keyId, name: caller.userId };
}

const param = (request: FastifyRequest, name: string): string => (request.params as Record<string, string>)[name]!;

export function adminRoutes(app: FastifyInstance, deps: AdminRouteDeps): void {
  app.get("/v1/admin/reports", async (request) => {
    adminOf(request);
    const query = ReportStatusQuery.parse(request.query);
    return deps.reports.list({ status: query.status, limit: query.limit ?? 50, cursor: query.cursor });
  });

  app.post("/v1/admin/reports/:id/resolve", async (request) => {
    const actor = adminOf(request);
    const body = ResolveReportBody.parse(optionalBody(request));
    return { report: await deps.reports.resolve(actor, param(request, "id"), body) };
  });

  app.post("/v1/admin/users/:id/suspend", async (request) => {
    const actor = adminOf(request);
    const { reason } = SuspendBody.parse(optionalBody(request));
    return { user: await deps.suspensions.suspend(actor, param(request, "id"), reason) };
  });

  app.delete("/v1/admin/users/:id/suspend", async (request) => {
    const actor = adminOf(request);
    return { user: await deps.suspensions.lift(actor, param(request, "id")) };
  });

  app.get("/v1/admin/audit", async (request) => {
    adminOf(request);
    const { limit, cursor } = PageQuery.parse(request.query);
    return deps.audit.list(limit ?? 50, cursor);
  });

  // ---------------------------------------------------------------------------------------------------------------
  // STUB, not built here: DELETE /v1/admin/conversations/:id/messages/:messageId (an operator deletes any message).
  // It belongs to the message-delete work (tombstones and `message:updated`): register it here, call that module's
  // delete with the admin as actor (skipping the sender/group-admin check), and in the same transaction write
  // `deps.audit.record(actor, {action: "message.delete", targetType: "message", targetId: messageId, details:
  // {conversationId}}, tx)`. Answer as the user route does: 200 `{message}` (the tombstone); unknown is `not_found`.
  // ---------------------------------------------------------------------------------------------------------------
}
