// Uploads never attached to a message are deleted by a periodic job on every pod (UPLOAD_UNATTACHED_TTL_S after
// their creation, checked every UPLOAD_CLEANUP_INTERVAL_MS), in bounded batches until none is left. Several pods
// running it at once is harmless: deleting a deleted object or row does nothing.
import { type PeriodicSweep, startPeriodicSweep } from "../lifecycle/periodic-sweep.js";
import type { Attachments } from "./attachments.js";

/** `runOnce` deletes every expired unattached upload now and answers how many. */
export type UploadCleanup = PeriodicSweep;

export function startUploadCleanup(options: {
  attachments: Attachments;
  intervalMs: number;
  onError(err: unknown): void;
}): UploadCleanup {
  return startPeriodicSweep({
    deleteBatch: (limit) => options.attachments.deleteUnattached(limit),
    batchSize: 500,
    intervalMs: options.intervalMs,
    onError: options.onError,
  });
}
