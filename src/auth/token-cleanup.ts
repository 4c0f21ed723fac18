// Expired refresh tokens are deleted by a periodic job on every pod, in bounded batches (one short statement per
// batch, so no long lock and no huge transaction), until none is left. Several pods running it at once is harmless:
// deletes are idempotent and SKIP LOCKED lets each take rows the others are not deleting. A spent token is kept until
// it expires, since presenting it again must still be recognised as reuse.
import type { Sql } from "../db/client.js";

export interface TokenCleanupOptions {
  sql: Sql;
  intervalMs: number;
  /** Rows per statement. @default 1000 */
  batchSize?: number;
  onError(err: unknown): void;
}

export interface TokenCleanup {
  /** Deletes every expired refresh token now, batch by batch; answers how many. */
  runOnce(): Promise<number>;
  stop(): void;
}

export function startRefreshTokenCleanup(options: TokenCleanupOptions): TokenCleanup {
  const batchSize = options.batchSize ?? 1000;
  let running: Promise<number> | undefined;
  let stopped = false;

  const sweep = async (): Promise<number> => {
    let total = 0;
    for (;;) {
      if (stopped) return total;
      const rows = await options.sql<{ n: number }>(
        `WITH doomed AS (
           SELECT token_hash FROM refresh_tokens WHERE expires_at < now() LIMIT $1 FOR UPDATE SKIP LOCKED
         ), deleted AS (
           DELETE FROM refresh_tokens t USING doomed d WHERE t.token_hash = d.token_hash RETURNING 1
         )
         SELECT count(*)::int AS n FROM deleted`,
        [batchSize],
      );
      const n = Number(rows[0]?.n ?? 0);
      total += n;
      if (n < batchSize) return total;
    }
  };
  const runOnce = () => {
    // One sweep at a time per pod: a slow one is not stacked on.
    running ??= sweep().finally(() => (running = undefined));
    return running;
  };
  const timer = setInterval(() => {
    runOnce().catch((err: unknown) => options.onError(err));
  }, options.intervalMs);
  timer.unref();
  return {
    runOnce,
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
