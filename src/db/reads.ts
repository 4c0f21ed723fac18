// Where a read goes: to the streaming replica (DATABASE_READ_URL) when there is one and its answer is complete, else to
// the primary. The caller says what "complete" means for its answer, from a watermark it read on the primary (a
// conversation's last_seq): a replica replays the primary's commits in order, so an answer reaching the watermark holds
// every message committed before the request began, and one that stops short is read again from the primary rather
// than shown as the end. A replica that fails (down, slow past the pool's deadlines, a query cancelled by replay) is
// left alone for a while: reads go to the primary meanwhile, one probe at a time finds out whether it is back.
import { AppError, isBadInputError } from "../errors.js";
import type { Db } from "./client.js";

/** The reads a replica may serve, as /metrics labels them. */
export type ReadKind =
  "history" | "search" | "user_search" | "conversation_list" | "sync_messages" | "sync_conversations";

/**
 * Why a read went to the primary although a replica is configured: `behind` (the replica's answer stopped below the
 * primary's watermark), `error` (the replica failed this read), `down` (a recent failure: the replica is rested).
 */
export type FallbackReason = "behind" | "error" | "down";

export interface ReadsOptions {
  /** How long the replica is left alone after a failure, in ms. @default 5000 */
  retryMs?: number;
  log?: { warn(obj: object, msg: string): void } | undefined;
  /** Told of every read when a replica is configured: served by the replica, or by the primary and why. */
  onRead?: (kind: ReadKind, source: "replica" | "primary", reason?: FallbackReason) => void;
}

export class Reads {
  private restUntil = 0;
  private probing = false;

  constructor(
    readonly primary: Db,
    private readonly replica: Db | undefined = undefined,
    private readonly options: ReadsOptions = {},
  ) {}

  /** Whether a replica is configured at all. */
  get hasReplica(): boolean {
    return this.replica !== undefined;
  }

  /**
   * Runs `query` on the replica, or on the primary when there is none, when the replica is resting after a failure,
   * when it fails, or when `complete` finds its answer behind the primary. Refusals of the request itself (an
   * AppError, input PostgreSQL rejects) are the same on either server and are thrown as they are.
   */
  async read<T>(kind: ReadKind, query: (db: Db) => Promise<T>, complete?: (answer: T) => boolean): Promise<T> {
    const replica = this.replica;
    if (replica === undefined) return query(this.primary);
    const now = Date.now();
    const probe = this.restUntil !== 0 && now >= this.restUntil && !this.probing;
    if (now < this.restUntil || (this.restUntil !== 0 && !probe)) return this.fallBack(kind, "down", query);
    if (probe) this.probing = true;
    let answer: T;
    try {
      answer = await query(replica);
      if (probe) this.restUntil = 0;
    } catch (err) {
      if (err instanceof AppError || isBadInputError(err)) {
        if (probe) this.restUntil = 0;
        throw err;
      }
      // Only the first failure of a spell is logged: the pod may serve thousands of reads while the replica is away.
      if (this.restUntil === 0) this.options.log?.warn({ err }, "read replica failed: reading from the primary");
      this.restUntil = Date.now() + (this.options.retryMs ?? 5_000);
      return this.fallBack(kind, "error", query);
    } finally {
      if (probe) this.probing = false;
    }
    if (complete !== undefined && !complete(answer)) return this.fallBack(kind, "behind", query);
    this.options.onRead?.(kind, "replica");
    return answer;
  }

  private fallBack<T>(kind: ReadKind, reason: FallbackReason, query: (db: Db) => Promise<T>): Promise<T> {
    this.options.onRead?.(kind, "primary", reason);
    return query(this.primary);
  }
}
