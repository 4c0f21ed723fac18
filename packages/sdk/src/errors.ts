// The one error type the SDK surfaces, for HTTP answers, socket acks and local failures alike, so an app handles
// `err.code` the same way whichever transport a call used.
import { ERROR_STATUS } from "@chat-gateway/protocol";
import type { ErrorCode, WireError } from "@chat-gateway/protocol";

/** Failures that never reached the gateway's error catalog: the request did not get an answer. */
export type LocalErrorCode = "network_error" | "timeout";
export type ChatErrorCode = ErrorCode | LocalErrorCode;

const STATUS_OF: Readonly<Record<ChatErrorCode, number>> = {
  ...ERROR_STATUS,
  network_error: 0,
  timeout: 0,
};

export class ChatApiError extends Error {
  override readonly name = "ChatApiError";
  readonly code: ChatErrorCode;
  /** HTTP status; for socket acks the status the same code has over HTTP; 0 when no answer arrived. */
  readonly status: number;
  readonly details: unknown;

  constructor(code: ChatErrorCode, message: string, options: { status?: number; details?: unknown } = {}) {
    super(message);
    this.code = code;
    this.status = options.status ?? STATUS_OF[code];
    this.details = options.details;
  }

  static fromWire(error: WireError, status?: number): ChatApiError {
    return new ChatApiError(error.code, error.message, { status, details: error.details });
  }

  /** `details.retryAfterMs` of a `rate_limited` or `unavailable` answer, when the server gave one. */
  get retryAfterMs(): number | undefined {
    const d = this.details as { retryAfterMs?: unknown } | null | undefined;
    return typeof d?.retryAfterMs === "number" && Number.isFinite(d.retryAfterMs) ? d.retryAfterMs : undefined;
  }
}

const ERROR_CODES = new Set<string>(Object.keys(STATUS_OF));

/** Turns anything thrown inside the SDK into a ChatApiError, keeping one that already is. */
export function toChatApiError(err: unknown): ChatApiError {
  if (err instanceof ChatApiError) return err;
  const e = err as { code?: unknown; message?: unknown } | null;
  if (e && typeof e.code === "string" && ERROR_CODES.has(e.code)) {
    return new ChatApiError(e.code as ChatErrorCode, typeof e.message === "string" ? e.message : e.code);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ChatApiError("network_error", message);
}

/** Codes that say "this request is wrong": sending it again cannot succeed. */
const PERMANENT: ReadonlySet<ChatErrorCode> = new Set([
  "bad_request",
  "payload_too_large",
  "not_found",
  "forbidden",
  "conflict",
]);

export function isPermanent(error: ChatApiError): boolean {
  return PERMANENT.has(error.code);
}
