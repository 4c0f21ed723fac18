// The operator API under /v1/admin: reports, suspensions, deleting any message and the audit log. Only service tokens with
// `role: "admin"`, which only a SERVICE_KEYS key marked admin can sign; user tokens and plain service tokens are
// `forbidden`, no token `unauthorized` (the /v1 authenticator). Every action writes an audit row with the key and
// name of the token, in the same transaction as the action.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { deleteMessage, type MessageChanges } from "../../chat/message-changes.js";
import { PageQuery, ReportStatusQuery, ResolveReportBody, SuspendBody } from "@chat-gateway/protocol/schemas";
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
  /** Message changes, for the operator's deletion (deleteMessage). */
  changes: MessageChanges;
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

  // An operator deletes any message: the same tombstone and `message:updated` as a member's deletion, with the audit
  // row in the deleting transaction. Unknown (or not in that conversation) is `not_found`.
  app.delete("/v1/admin/conversations/:id/messages/:messageId", async (request) => {
    const actor = adminOf(request);
    const ref = { conversationId: param(request, "id"), messageId: param(request, "messageId") };
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
