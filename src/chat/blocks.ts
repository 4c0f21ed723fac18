// Blocking: one user stops another from reaching them. What a block means is enforced where each thing happens:
// the direct-conversation send (message-writer.ts, inside the batch statement), opening a direct conversation
// (conversations.ts), presence (presence/visibility.ts), typing (realtime/typing.ts) and push (push/push-service.ts).
// This module only keeps the list and tells listeners when a pair stops being able to see each other.
import type { Db } from "../db/client.js";
import { badRequest, forbidden, notFound } from "../errors.js";
import type { PublicUser } from "@chat-gateway/protocol";
import { isUuid } from "./ports.js";

/** Most users one user may block; `GET /v1/users/me/blocks` answers all of them in one page. */
export const MAX_BLOCKS_PER_USER = 1000;

/**
 * Told after a block is stored (not for a repeated one), so presence watches between the two can be dropped. Awaited
 * before the block answers (it must not reject).
 */
export type BlockedListener = (blockerId: string, blockedId: string) => Promise<void>;

export class Blocks {
  private readonly listeners: BlockedListener[] = [];

  constructor(private readonly db: Db) {}

  onBlocked(listener: BlockedListener): void {
    this.listeners.push(listener);
  }

  /** Idempotent: blocking twice changes nothing. Yourself is `bad_request`, an unknown user `not_found`. */
  async block(blockerId: string, blockedId: string): Promise<void> {
    await this.requireOther(blockerId, blockedId);
    const count = await this.db.block.count({ where: { blockerId } });
    if (count >= MAX_BLOCKS_PER_USER) {
      const already = await this.db.block.findUnique({ where: { blockerId_blockedId: { blockerId, blockedId } } });
      if (already !== null) return;
      throw forbidden(`a user may block at most ${MAX_BLOCKS_PER_USER} users`);
    }
    const { count: added } = await this.db.block.createMany({
      data: [{ blockerId, blockedId }],
      skipDuplicates: true,
    });
    if (added > 0) await Promise.all(this.listeners.map((listener) => listener(blockerId, blockedId)));
  }

  /** Idempotent: lifting a block that is not there is fine. */
  async unblock(blockerId: string, blockedId: string): Promise<void> {
    await this.requireOther(blockerId, blockedId);
    await this.db.block.deleteMany({ where: { blockerId, blockedId } });
  }

  /** The users this user blocks, most recently blocked first. */
  async list(blockerId: string): Promise<PublicUser[]> {
    const rows = await this.db.block.findMany({
      where: { blockerId },
      orderBy: { createdAt: "desc" },
      take: MAX_BLOCKS_PER_USER,
      select: { blocked: { select: { id: true, username: true, displayName: true } } },
    });
    return rows.map((r) => r.blocked);
  }

  private async requireOther(actorId: string, userId: string): Promise<void> {
    if (userId === actorId) throw badRequest("you cannot block yourself", [{ field: "id", problem: "is you" }]);
    if (!isUuid(userId)) throw notFound("user");
    const user = await this.db.user.findFirst({ where: { id: userId, isSystem: false }, select: { id: true } });
    if (user === null) throw notFound("user");
  }
}

/** Whether `blockedId` is blocked by `blockerId`: one primary-key lookup. */
export async function isBlockedBy(db: Db, blockedId: string, blockerId: string): Promise<boolean> {
  const row = await db.block.findUnique({
    where: { blockerId_blockedId: { blockerId, blockedId } },
    select: { blockerId: true },
  });
  return row !== null;
}
