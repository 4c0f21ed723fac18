// Expired refresh tokens are deleted by a periodic job on every pod, in bounded batches (one short statement per
// batch, so no long lock and no huge transaction), until none is left. Several pods running it at once is harmless:
// deletes are idempotent and SKIP LOCKED lets each take rows the others are not deleting. A spent token is kept until
// it expires, since presenting it again must still be recognised as reuse.
import type { Sql } from "../db/client.js";
import { type PeriodicSweep, startPeriodicSweep } from "../lifecycle/periodic-sweep.js";

export interface TokenCleanupOptions {
  sql: Sql;
  intervalMs: number;
  /** Rows per statement. @default 1000 */
  batchSize?: number;
  onError(err: unknown): void;
}

/** `runOnce` deletes every expired refresh token now, batch by batch, and answers how many. */
export type TokenCleanup = PeriodicSweep;

export function startRefreshTokenCleanup(options: TokenCleanupOptions): TokenCleanup {
  return startPeriodicSweep({
    deleteBatch: async (limit) => {
      const rows = await options.sql<{ n: number }>(
        `WITH doomed AS (
           SELECT token_hash FROM refresh_tokens WHERE expires_at < now() LIMIT $1 FOR UPDATE SKIP LOCKED
         ), deleted AS (
           DELETE FROM refresh_tokens t USING doomed d WHERE t.token_hash = d.token_hash RETURNING 1
         )
         SELECT count(*)::int AS n FROM deleted`,
        [limit],
      );
      return Number(rows[0]?.n ?? 0);
    },
    batchSize: options.batchSize ?? 1000,
    intervalMs: options.intervalMs,
    onError: options.onError,
  });
}
