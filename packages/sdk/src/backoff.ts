// How long to wait before trying again; one policy for sends, syncs, gap fills and token refreshes.
import { ChatApiError, isPermanent } from "./errors.js";

export interface BackoffOptions {
  /** First retry delay in ms. @default 500 */
  initialDelayMs?: number;
  /** Longest delay in ms. @default 30000 */
  maxDelayMs?: number;
}

/**
 * Exponential backoff with "equal jitter": half the delay is fixed, half random, so a crowd of clients that failed
 * together (a pod died) spreads out instead of retrying in lockstep, yet nobody retries immediately.
 * `attempt` counts from 1.
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const initial = options.initialDelayMs ?? 500;
  const max = options.maxDelayMs ?? 30_000;
  const exponent = Math.min(Math.max(attempt, 1) - 1, 30);
  const ceiling = Math.min(max, initial * 2 ** exponent);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * The delay before retrying a request that failed with `error` on its `attempt`-th try, or `null` when retrying
 * cannot help (the request itself is wrong). A `rate_limited` or `unavailable` answer with `retryAfterMs` is honoured
 * to the millisecond the server asked.
 */
export function retryDelay(
  error: ChatApiError,
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number | null {
  if (isPermanent(error)) return null;
  // The server's own wait wins: `rate_limited` always carries one, `unavailable` does when a pod refuses for capacity
  // (its jitter already spreads clients out).
  if (error.code === "rate_limited" || error.code === "unavailable") {
    const asked = error.retryAfterMs;
    if (asked !== undefined) return Math.max(asked, 0);
  }
  return backoffDelay(attempt, options, random);
}
