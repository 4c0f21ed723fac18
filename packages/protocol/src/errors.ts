// The contract's error codes and their HTTP statuses, shared by the server's catalog (src/errors.ts) and the SDK.
import type { ErrorCode } from "./types.js";

/** HTTP status of each code; the README's error table is tested against this map. */
export const ERROR_STATUS: Readonly<Record<ErrorCode, number>> = Object.freeze({
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  rate_limited: 429,
  unavailable: 503,
  internal: 500,
});
