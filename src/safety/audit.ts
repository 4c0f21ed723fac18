// The admin audit log: every action taken through /v1/admin, who took it (the service key and the name in its
// token), on what, when, and with which details. Written in the same transaction as the action it records, so an
// action is never without its row; listed newest first.
import { randomUUID } from "node:crypto";
import type { Db, Sql } from "../db/client.js";
import type { Prisma } from "../db/generated/client.js";
import { decodeCursor, pageOf } from "./keyset.js";

/** Who acted: the service key id (`kid:<kid>`) and the service name (`sub`) of the admin token. */
export interface AdminActor {
  keyId: string;
  name: string;
}

export interface AuditEntry {
  action: "report.resolve" | "user.suspend" | "user.unsuspend" | "message.delete";
  targetType: "report" | "user" | "message";
  targetId: string;
  details?: Record<string, unknown>;
}

export interface AuditRecord {
  id: string;
  actor: AdminActor;
  action: string;
  target: { type: string; id: string };
  details: unknown;
  createdAt: string;
}

type Writer = Pick<Db, "adminAudit"> | Prisma.TransactionClient;

export class AuditLog {
  constructor(private readonly db: Db) {}

  async record(actor: AdminActor, entry: AuditEntry, tx: Writer = this.db): Promise<void> {
    await tx.adminAudit.create({
      data: {
        id: randomUUID(),
        actorKey: actor.keyId,
        actorName: actor.name,
        action: entry.action,
        targetType: entry.targetType,
        targetId: entry.targetId,
        details: (entry.details ?? {}) as Prisma.InputJsonObject,
      },
    });
  }

  /** The same row through raw SQL, for actions whose transaction is raw SQL (an operator's message deletion). */
  async recordSql(actor: AdminActor, entry: AuditEntry, sql: Sql): Promise<void> {
    await sql(
      `INSERT INTO admin_audit (id, actor_key, actor_name, action, target_type, target_id, details)
       VALUES ($1::uuid, $2, $3, $4, $5, $6, $7::jsonb)`,
      [
        randomUUID(),
        actor.keyId,
        actor.name,
        entry.action,
        entry.targetType,
        entry.targetId,
        JSON.stringify(entry.details ?? {}),
      ],
    );
  }

  async list(
    limit: number,
    cursor: string | undefined,
  ): Promise<{ entries: AuditRecord[]; nextCursor: string | null }> {
    const after = decodeCursor(cursor);
    const rows = await this.db.adminAudit.findMany({
      where:
        after === undefined
          ? {}
          : {
              OR: [{ createdAt: { lt: after.createdAt } }, { createdAt: after.createdAt, id: { lt: after.id } }],
            },
      orderBy: [{ createdAt: "desc" }, { id: "desc" }],
      take: limit + 1,
    });
    const page = pageOf(rows, limit);
    return {
      entries: page.rows.map((r) => ({
        id: r.id,
        actor: { keyId: r.actorKey, name: r.actorName },
        action: r.action,
        target: { type: r.targetType, id: r.targetId },
        details: r.details,
        createdAt: r.createdAt.toISOString(),
      })),
      nextCursor: page.nextCursor,
    };
  }
}
