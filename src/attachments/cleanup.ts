// Uploads never attached to a message are deleted by a periodic job on every pod (UPLOAD_UNATTACHED_TTL_S after
// their creation, checked every UPLOAD_CLEANUP_INTERVAL_MS), in bounded batches until none is left. Several pods
// running it at once is harmless: deleting a deleted object or row does nothing.
import type { Attachments } from "./attachments.js";

export interface UploadCleanup {
  /** Deletes every expired unattached upload now; answers how many. */
  runOnce(): Promise<number>;
  stop(): void;
}

export function startUploadCleanup(options: {
  attachments: Attachments;
  intervalMs: number;
  onError(err: unknown): void;
}): UploadCleanup {
  const batchSize = 500;
  let running: Promise<number> | undefined;
  let stopped = false;
  const sweep = async (): Promise<number> => {
    let total = 0;
    while (!stopped) {
      const n = await options.attachments.deleteUnattached(batchSize);
      total += n;
      if (n < batchSize) break;
    }
    return total;
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
