// Every push service's answer, classified in one place: delivered, the device is gone (its subscription is deleted),
// refused for good (a retry would not help), or worth retrying (thrown as TransientPushError, so the queue retries
// it with backoff). Providers only report what the service said (status, reason); the rules live here.
import type { ProviderName } from "./types.js";

/**
 * sent: accepted by the push service. gone: the service says the subscription no longer exists, so it is deleted.
 * rejected: a permanent refusal (bad request, bad credentials) that a retry would not fix.
 * A transient failure (5xx, 429, network) is thrown as TransientPushError and retried with backoff.
 */
export type DeliveryOutcome = { kind: "sent" } | { kind: "gone" } | { kind: "rejected"; status: number };

export class TransientPushError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "TransientPushError";
  }
}

/** What a push service answered. `reason`: APNs' `reason`, or FCM's error status / `errorCode`s. */
export interface ProviderAnswer {
  status: number;
  reasons?: readonly string[];
}

/** The outcome, or `retry` (with `renewCredentials` when the provider's own token was refused and must be renewed). */
export type Classification = DeliveryOutcome | { kind: "retry"; status: number; renewCredentials: boolean };

/** APNs reasons that mean the token no longer reaches an installed app (besides 410 Unregistered). */
const APNS_GONE = new Set(["BadDeviceToken", "Unregistered", "DeviceTokenNotForTopic"]);
const APNS_STALE_PROVIDER_TOKEN = new Set(["ExpiredProviderToken", "InvalidProviderToken"]);
/** FCM says a registration token is dead with NOT_FOUND or an UNREGISTERED error code in the details. */
const FCM_GONE = new Set(["NOT_FOUND", "UNREGISTERED"]);

export function classifyAnswer(provider: ProviderName, answer: ProviderAnswer): Classification {
  const { status } = answer;
  const reasons = answer.reasons ?? [];
  const said = (set: ReadonlySet<string>) => reasons.some((r) => set.has(r));
  switch (provider) {
    case "apns":
      // Renew the token on the retry; a key that is really wrong keeps failing and runs out of attempts.
      if (status === 403 && said(APNS_STALE_PROVIDER_TOKEN)) return { kind: "retry", status, renewCredentials: true };
      if (status === 410 || (status === 400 && said(APNS_GONE))) return { kind: "gone" };
      break;
    case "fcm":
      // The cached access token was revoked or expired early: fetch a new one on the retry.
      if (status === 401) return { kind: "retry", status, renewCredentials: true };
      if (said(FCM_GONE)) return { kind: "gone" };
      break;
    case "webhook": {
      // The operator's hook has no subscription to forget: "gone" from it is a refusal, not a deletion.
      const outcome = classifyStatus(status);
      return outcome.kind === "gone" ? { kind: "rejected", status } : outcome;
    }
    case "webpush":
      break;
  }
  return classifyStatus(status);
}

/** The HTTP status rules every push service shares (RFC 8030 for Web Push; FCM and APNs agree on these). */
function classifyStatus(status: number): Classification {
  if (status >= 200 && status < 300) return { kind: "sent" };
  if (status === 404 || status === 410) return { kind: "gone" };
  if (status === 408 || status === 429 || status >= 500) return { kind: "retry", status, renewCredentials: false };
  return { kind: "rejected", status };
}

/**
 * A provider's answer as its `send` returns it: the outcome, or a thrown TransientPushError for a retry (after
 * `renew` dropped the refused credentials, when that was the trouble).
 */
export function settle(
  provider: ProviderName,
  answer: ProviderAnswer,
  what: string,
  renew?: () => void,
): DeliveryOutcome {
  const classified = classifyAnswer(provider, answer);
  if (classified.kind !== "retry") return classified;
  if (classified.renewCredentials) renew?.();
  throw new TransientPushError(`${what} answered ${answer.status}`, answer.status);
}

/** The request never got an answer (refused, reset, timed out): the service may come back. */
export function unreachable(what: string, err: unknown): TransientPushError {
  return new TransientPushError(`${what} request failed: ${err instanceof Error ? err.message : String(err)}`);
}

/** A provider said a retry may succeed. */
export function isTransientPushFailure(err: unknown): err is TransientPushError {
  return err instanceof TransientPushError;
}

/**
 * Whether a failed push job is worth another attempt: a provider's transient failure, or anything unexpected (the
 * database or Redis blinked); an AppError is a decided refusal and is not retried.
 */
export function isRetryable(err: unknown): boolean {
  return isTransientPushFailure(err) || !(err instanceof Error && err.name === "AppError");
}
