// The one catalog of error codes, and the one place that maps any error to a client answer.
// Library errors (Prisma, Redis, Zod) become protocol codes here and nowhere else.
import { ZodError } from "zod";
import { ERROR_STATUS } from "@chat-gateway/protocol";
import type { ErrorCode, WireError } from "@chat-gateway/protocol";

export { ERROR_STATUS };

/** An error the client is meant to see, with its code. */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = "AppError";
  }
}

export const badRequest = (message: string, details?: unknown) => new AppError("bad_request", message, details);
export const unauthorized = (message = "authentication required") => new AppError("unauthorized", message);
export const forbidden = (message: string) => new AppError("forbidden", message);
export const notFound = (what = "conversation") => new AppError("not_found", `${what} not found`);
export const conflict = (message: string) => new AppError("conflict", message);
export const payloadTooLarge = (message: string, details?: unknown) =>
  new AppError("payload_too_large", message, details);
export const rateLimited = (retryAfterMs: number) =>
  new AppError("rate_limited", "too many requests", { retryAfterMs: Math.max(1, Math.ceil(retryAfterMs)) });
export const unavailable = (message = "a dependency is unavailable, retry later", details?: unknown) =>
  new AppError("unavailable", message, details);

/** Zod issues as `details`: which field, and why. */
export function validationError(error: ZodError): AppError {
  const details = error.issues.map((i) => ({ field: i.path.join(".") || "(payload)", problem: i.message }));
  const tooLarge = error.issues.find((i) => i.code === "too_big" && i.path.at(-1) === "content");
  if (tooLarge) return payloadTooLarge("content is too long", details);
  return badRequest(`invalid ${details.map((d) => d.field).join(", ")}`, details);
}

// Error codes from drivers and Prisma that mean "the dependency is down", not "the request is wrong".
const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "P1001", // Prisma: can't reach database server
  "P1002",
  "P1017", // server closed the connection
  "P2024", // pool timeout
  "55P03", // lock_not_available: lock_timeout expired waiting for a row another session holds
]);

// Driver-adapter error kinds (Prisma 7) that mean the database is unreachable or refusing work, not a bad request.
const UNAVAILABLE_KINDS = new Set([
  "ConnectionClosed",
  "DatabaseNotReachable",
  "DatabaseDoesNotExist",
  "DatabaseAccessDenied",
  "AuthenticationFailed",
  "SocketTimeout",
  "TlsConnectionError",
  "TooManyConnections",
  "TransactionWriteConflict",
]);

/** Every code-like field in an error and the errors it wraps (cause, AggregateError, Prisma's adapter metadata). */
function errorCodes(err: unknown, depth = 0): string[] {
  if (err === null || typeof err !== "object" || depth > 5) return [];
  const e = err as Record<string, unknown>;
  const own = ["code", "kind", "originalCode"].map((k) => e[k]).filter((v): v is string => typeof v === "string");
  // A FATAL PostgreSQL error ends the session: the server is refusing connections, whatever the code.
  if (e.severity === "FATAL") own.push("FATAL");
  const nested = [e.cause, e.meta, e.driverAdapterError].flatMap((x) => errorCodes(x, depth + 1));
  const aggregated = Array.isArray(e.errors) ? e.errors.flatMap((x) => errorCodes(x, depth + 1)) : [];
  return [...own, ...nested, ...aggregated];
}

export function isUnavailableError(err: unknown): boolean {
  if (err instanceof AppError) return err.code === "unavailable";
  const codes = errorCodes(err);
  // SQLSTATE classes 08 (connection), 53 (insufficient resources), 57 (operator intervention, e.g. shutdown).
  const connectionClass = (c: string) => /^(08|53|57)[0-9A-Z]{3}$/.test(c);
  if (codes.some((c) => UNAVAILABLE_CODES.has(c) || UNAVAILABLE_KINDS.has(c) || connectionClass(c) || c === "FATAL")) {
    return true;
  }
  const text = err instanceof Error ? `${err.name} ${err.message}` : "";
  return /connection (terminated|refused|closed|is closed)|Connection terminated|Query read timeout|ClientClosedError|The client is closed|Socket closed unexpectedly|DatabaseNotReachable|Can't reach database|timeout exceeded when trying to connect/i.test(
    text,
  );
}

// Driver-adapter error kinds (Prisma 7) for PostgreSQL's data exceptions, when its SQLSTATE is not carried along.
const BAD_INPUT_KINDS = new Set(["LengthMismatch", "ValueOutOfRange", "InvalidInputValue"]);

/**
 * PostgreSQL refused the request's own data: SQLSTATE class 22 (data exception: a NUL byte 22021, a malformed value
 * 22P02, a value too long 22001, ...) or 54 (program limit exceeded: a value or statement too large). Sending it
 * again cannot succeed, and it is the request's fault rather than a bug of ours: `bad_request`, not `internal`.
 */
export function isBadInputError(err: unknown): boolean {
  return errorCodes(err).some((c) => /^(22|54)[0-9A-Z]{3}$/.test(c) || BAD_INPUT_KINDS.has(c));
}

/** A deadlock or serialization failure: PostgreSQL aborted the statement to break a tie; running it again is safe. */
export function isRetryableConflict(err: unknown): boolean {
  return errorCodes(err).some((c) => c === "40P01" || c === "40001" || c === "TransactionWriteConflict");
}

/** A unique-constraint violation (Prisma P2002 or PostgreSQL 23505). */
export function isUniqueViolation(err: unknown): boolean {
  return errorCodes(err).some((c) => c === "P2002" || c === "23505" || c === "UniqueConstraintViolation");
}

/** Fastify's own request errors (body too large, bad JSON, wrong content type) by their HTTP status. */
function frameworkError(err: unknown): AppError | undefined {
  if (err === null || typeof err !== "object") return undefined;
  const { statusCode, code, message } = err as { statusCode?: unknown; code?: unknown; message?: unknown };
  if (typeof code !== "string" || !code.startsWith("FST_") || typeof statusCode !== "number") return undefined;
  const text = typeof message === "string" ? message : "bad request";
  if (statusCode === 413) return payloadTooLarge("request body is too large");
  if (statusCode === 404) return new AppError("not_found", "not found");
  if (statusCode >= 400 && statusCode < 500) return badRequest(text);
  return undefined;
}

/** Maps anything thrown to the wire error and whether it was our bug (to be logged with the request id). */
export function toWireError(err: unknown): { error: WireError; status: number; isBug: boolean } {
  let app: AppError;
  if (err instanceof AppError) app = err;
  else if (err instanceof ZodError) app = validationError(err);
  else if (frameworkError(err)) app = frameworkError(err)!;
  else if (isUnavailableError(err)) app = unavailable();
  else if (isBadInputError(err)) app = badRequest("the database refused this request's data");
  else app = new AppError("internal", "internal error");
  const error: WireError = { code: app.code, message: app.message };
  if (app.details !== undefined) error.details = app.details;
  return { error, status: ERROR_STATUS[app.code], isBug: app.code === "internal" };
}
