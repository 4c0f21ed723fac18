// The one retry loop of the SDK's background work (sync pages, gap fills, presence, queued message changes): try,
// and after a failure wait as `retryDelay` says (the server's `retryAfterMs`, else backoff with jitter) and try
// again, until it works, retrying cannot help, or the work stopped mattering (the connection it was for ended).
import { type BackoffOptions, retryDelay } from "./backoff.js";
import { sleep, type TimerSet } from "./clock.js";
import { type ChatApiError, toChatApiError } from "./errors.js";

export interface RetryOptions {
  /** Where the waits are scheduled, so closing the client cancels them. */
  timers: TimerSet;
  /** Asked before every try: false ends the retries with `stopped` (the connection this was for is gone). */
  active?: () => boolean;
  /** Failures that end the retries although `retryDelay` would wait (beyond the permanent codes it already stops on). */
  giveUpOn?: (error: ChatApiError) => boolean;
  backoff?: BackoffOptions;
}

export type RetryOutcome<T> =
  | { status: "done"; value: T }
  /** Retrying cannot help: the request is wrong, or `giveUpOn` said so. */
  | { status: "failed"; error: ChatApiError }
  | { status: "stopped" };

/** Runs `attempt` (given its number, from 1) until it resolves, fails for good, or `active` turns false. */
export async function retrying<T>(attempt: (n: number) => Promise<T>, options: RetryOptions): Promise<RetryOutcome<T>> {
  for (let n = 1; ; n++) {
    if (options.active && !options.active()) return { status: "stopped" };
    try {
      return { status: "done", value: await attempt(n) };
    } catch (err) {
      const error = toChatApiError(err);
      const delay = options.giveUpOn?.(error) ? null : retryDelay(error, n, options.backoff);
      if (delay === null) return { status: "failed", error };
      await sleep(options.timers, delay);
    }
  }
}
