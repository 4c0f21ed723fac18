// A clean-up every pod runs on a timer: one batch after another until a batch comes back short, one sweep at a time
// per pod (a slow one is not stacked on), stopped between batches when the pod shuts down. Running on several pods at
// once must be harmless for the caller's `deleteBatch` (idempotent deletes, SKIP LOCKED).

export interface PeriodicSweep {
  /** Sweeps now (or joins the sweep already running); answers how many rows or objects went. */
  runOnce(): Promise<number>;
  stop(): void;
}

export interface PeriodicSweepOptions {
  /** Deletes at most `batchSize` and answers how many it deleted. */
  deleteBatch(batchSize: number): Promise<number>;
  batchSize: number;
  intervalMs: number;
  /** A failed sweep on the timer (runOnce's own callers get the rejection). */
  onError(err: unknown): void;
}

export function startPeriodicSweep(options: PeriodicSweepOptions): PeriodicSweep {
  const { batchSize } = options;
  let running: Promise<number> | undefined;
  let stopped = false;
  const sweep = async (): Promise<number> => {
    let total = 0;
    while (!stopped) {
      const n = await options.deleteBatch(batchSize);
      total += n;
      if (n < batchSize) break;
    }
    return total;
  };
  const runOnce = () => {
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
