// Suspending a user: the account is marked (logins refused with `forbidden`, and every access token still
// unexpired refused at its next HTTP call, handshake or auth:refresh, since the session check reads the mark), every
// login (refresh family) is revoked, and the listeners end the user's live sockets on every pod with
// `session:ended {reason: "suspended"}`. Lifting clears the mark; old logins stay revoked, the user signs in again.
import type { Accounts } from "../auth/accounts.js";
import { isUuid } from "../chat/ports.js";
import type { Db } from "../db/client.js";
import { notFound } from "../errors.js";
import type { AdminActor, AuditLog } from "./audit.js";

export interface SuspensionView {
  /** Logins revoked by this call (suspend only). */
  revokedSessions?: number;
  id: string;
  username: string;
  suspendedAt: string | null;
  suspendedReason: string | null;
}

export class Suspensions {
  private readonly suspendedListeners: ((userId: string) => void)[] = [];

  constructor(
    private readonly db: Db,
    private readonly accounts: Accounts,
    private readonly audit: AuditLog,
  ) {}

  /** Told after a suspension commits, to end the user's sockets everywhere. */
  onSuspended(listener: (userId: string) => void): void {
    this.suspendedListeners.push(listener);
  }

  /** Suspends (again: the first suspension's time is kept, the reason updated); system users are `not_found`. */
  async suspend(actor: AdminActor, userId: string, reason: string | undefined): Promise<SuspensionView> {
    const view = await this.mark(actor, userId, { suspend: true, reason });
    // The mark alone already refuses every session (the session check joins it); revoking the families also ends
    // refresh for good, so lifting does not bring old logins back.
    const revoked = await this.accounts.revokeAllSessions(userId);
    for (const listener of this.suspendedListeners) listener(userId);
    return { ...view, revokedSessions: revoked };
  }

  async lift(actor: AdminActor, userId: string): Promise<SuspensionView> {
    return this.mark(actor, userId, { suspend: false, reason: undefined });
  }

  private async mark(
    actor: AdminActor,
    userId: string,
    change: { suspend: boolean; reason: string | undefined },
  ): Promise<SuspensionView> {
    if (!isUuid(userId)) throw notFound("user");
    return this.db.$transaction(async (tx) => {
      const user = await tx.user.findUnique({ where: { id: userId }, select: { isSystem: true, suspendedAt: true } });
      if (user === null || user.isSystem) throw notFound("user");
      const updated = await tx.user.update({
        where: { id: userId },
        data: change.suspend
          ? { suspendedAt: user.suspendedAt ?? new Date(), suspendedReason: change.reason ?? null }
          : { suspendedAt: null, suspendedReason: null },
        select: { id: true, username: true, suspendedAt: true, suspendedReason: true },
      });
      await this.audit.record(
        actor,
        {
          action: change.suspend ? "user.suspend" : "user.unsuspend",
          targetType: "user",
          targetId: userId,
          details: change.suspend ? { reason: change.reason ?? null } : {},
        },
        tx,
      );
      return {
        id: updated.id,
        username: updated.username,
        suspendedAt: updated.suspendedAt?.toISOString() ?? null,
        suspendedReason: updated.suspendedReason,
      };
    });
  }
}
