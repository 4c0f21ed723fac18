// Reports of a message or a user, filed by users and worked through by operators (the admin API and the report
// webhook). A message report copies the message as it is at that moment (sender, content, time) into the report, so
// a later edit or deletion leaves the evidence intact. Only a member of the message's conversation may report it;
// to anyone else the message does not exist (`not_found`).
import { randomUUID } from "node:crypto";
import { isUuid } from "../chat/ports.js";
import type { Db } from "../db/client.js";
import type { Report as ReportRow } from "../db/generated/client.js";
import { badRequest, conflict, notFound } from "../errors.js";
import { type AdminActor, AuditLog } from "./audit.js";
import { decodeCursor, pageOf } from "./keyset.js";

export type ReportInput = { messageId: string; reason: string } | { userId: string; reason: string };

/** A report as operators see it (admin API and webhook). */
export interface ReportView {
  id: string;
  status: "open" | "resolved";
  reason: string;
  reporterId: string;
  targetUserId: string;
  conversationId: string | null;
  /** The reported message as it was when reported; null for a report of a user. */
  message: { id: string; senderId: string; content: string; createdAt: string } | null;
  createdAt: string;
  resolution: { at: string; by: string; action: string | null; note: string | null } | null;
}

export type ReportFiledListener = (report: ReportView) => void;

interface MessageSnapshot {
  id: string;
  conversation_id: string;
  sender_id: string;
  content: string;
  created_at: Date;
}

export class Reports {
  private readonly filedListeners: ReportFiledListener[] = [];

  constructor(
    private readonly db: Db,
    private readonly audit: AuditLog,
  ) {}

  /** Told after commit of each new report (the operator webhook listens); never holds up the reporter. */
  onFiled(listener: ReportFiledListener): void {
    this.filedListeners.push(listener);
  }

  async file(reporterId: string, input: ReportInput): Promise<{ id: string }> {
    const id = randomUUID();
    let row: ReportRow;
    if ("messageId" in input) {
      const message = await this.visibleMessage(reporterId, input.messageId);
      if (message.sender_id === reporterId) throw badRequest("you cannot report your own message");
      row = await this.db.report.create({
        data: {
          id,
          reporterId,
          targetUserId: message.sender_id,
          messageId: message.id,
          conversationId: message.conversation_id,
          reason: input.reason,
          snapshotSenderId: message.sender_id,
          snapshotContent: message.content,
          snapshotCreatedAt: message.created_at,
        },
      });
    } else {
      if (input.userId === reporterId) throw badRequest("you cannot report yourself");
      if (!isUuid(input.userId)) throw notFound("user");
      const user = await this.db.user.findUnique({ where: { id: input.userId }, select: { isSystem: true } });
      if (user === null || user.isSystem) throw notFound("user");
      row = await this.db.report.create({
        data: { id, reporterId, targetUserId: input.userId, reason: input.reason },
      });
    }
    const view = toView(row);
    for (const listener of this.filedListeners) listener(view);
    return { id };
  }

  /** Oldest first (a queue to work through), optionally only open or only resolved ones. */
  async list(filter: {
    status?: "open" | "resolved" | undefined;
    limit: number;
    cursor?: string | undefined;
  }): Promise<{ reports: ReportView[]; nextCursor: string | null }> {
    const after = decodeCursor(filter.cursor);
    const rows = await this.db.report.findMany({
      where: {
        ...(filter.status === undefined ? {} : { status: filter.status }),
        ...(after === undefined
          ? {}
          : {
              OR: [{ createdAt: { gt: after.createdAt } }, { createdAt: after.createdAt, id: { gt: after.id } }],
            }),
      },
      orderBy: [{ createdAt: "asc" }, { id: "asc" }],
      take: filter.limit + 1,
    });
    const page = pageOf(rows, filter.limit);
    return { reports: page.rows.map(toView), nextCursor: page.nextCursor };
  }

  /** Resolves an open report and records it in the audit log, together; a resolved one is `conflict`. */
  async resolve(
    actor: AdminActor,
    reportId: string,
    resolution: { action?: string | undefined; note?: string | undefined },
  ): Promise<ReportView> {
    if (!isUuid(reportId)) throw notFound("report");
    return this.db.$transaction(async (tx) => {
      const { count } = await tx.report.updateMany({
        where: { id: reportId, status: "open" },
        data: {
          status: "resolved",
          resolvedAt: new Date(),
          resolvedBy: `${actor.keyId}/${actor.name}`,
          resolutionAction: resolution.action ?? null,
          resolutionNote: resolution.note ?? null,
        },
      });
      const row = await tx.report.findUnique({ where: { id: reportId } });
      if (row === null) throw notFound("report");
      if (count === 0) throw conflict("this report is already resolved");
      await this.audit.record(
        actor,
        {
          action: "report.resolve",
          targetType: "report",
          targetId: reportId,
          details: { action: resolution.action ?? null, note: resolution.note ?? null },
        },
        tx,
      );
      return toView(row);
    });
  }

  /** The message, if the reporter is a member of its conversation now; otherwise `not_found` like no message. */
  private async visibleMessage(reporterId: string, messageId: string): Promise<MessageSnapshot> {
    if (!isUuid(messageId)) throw notFound("message");
    const rows = await this.db.$queryRawUnsafe<MessageSnapshot[]>(
      `SELECT m.id::text, m.conversation_id::text, m.sender_id::text, m.content, m.created_at
         FROM messages m
         JOIN members mb ON mb.conversation_id = m.conversation_id AND mb.user_id = $2::uuid
        WHERE m.id = $1::uuid`,
      messageId,
      reporterId,
    );
    const message = rows[0];
    if (message === undefined) throw notFound("message");
    return message;
  }
}

function toView(r: ReportRow): ReportView {
  return {
    id: r.id,
    status: r.status === "resolved" ? "resolved" : "open",
    reason: r.reason,
    reporterId: r.reporterId,
    targetUserId: r.targetUserId,
    conversationId: r.conversationId,
    message:
      r.messageId === null || r.snapshotSenderId === null || r.snapshotCreatedAt === null
        ? null
        : {
            id: r.messageId,
            senderId: r.snapshotSenderId,
            content: r.snapshotContent ?? "",
            createdAt: r.snapshotCreatedAt.toISOString(),
          },
    createdAt: r.createdAt.toISOString(),
    resolution:
      r.resolvedAt === null
        ? null
        : {
            at: r.resolvedAt.toISOString(),
            by: r.resolvedBy ?? "",
            action: r.resolutionAction,
            note: r.resolutionNote,
          },
  };
}
