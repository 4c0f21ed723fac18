// The process-level safety net. Node's default for an unhandled rejection or an uncaught exception is to exit, and
// for a chat gateway an exit is the worst outcome: every socket of the pod drops at once and reconnects elsewhere,
// which is how one uncaught node-redis TimeoutError took down both pods under load. Every dependency failure is
// meant to be handled where it happens (adapter-clients.ts, presence, rate limits, push); this catches what still
// escapes, logs it (the error's type, message and stack only: never payloads, message bodies or tokens) and counts
// it in chat_uncaught_errors_total{kind}, so an escape is an alert to fix rather than an outage. The process keeps
// serving: the errors that reach here are a failed background call, not corrupted state of the request path.
import type { Logger } from "pino";

export type UncaughtKind = "unhandled_rejection" | "uncaught_exception";

export interface LastResort {
  /** Counts into the gateway's metric from now on (and what was caught before it existed). */
  countInto(counter: { inc(labels: { kind: UncaughtKind }): void }): void;
  uninstall(): void;
}

// JWTs and bearer credentials must not reach the logs even if a library put one in an error message.
const SECRET = /\beyJ[\w-]+\.[\w-]+\.[\w-]*|\b(Bearer|token[=:])\s*\S+/gi;
const redact = (text: string) => text.replace(SECRET, "[redacted]").slice(0, 2_000);

function describe(value: unknown): Record<string, unknown> {
  if (!(value instanceof Error)) return { type: typeof value };
  const code = (value as { code?: unknown }).code;
  return {
    type: value.constructor.name,
    message: redact(value.message),
    ...(typeof code === "string" ? { code } : {}),
    stack: redact(value.stack ?? "")
      .split("\n")
      .filter((line) => line.trimStart().startsWith("at "))
      .slice(0, 12)
      .join("\n"),
  };
}

export function installLastResort(log: Logger): LastResort {
  const early: UncaughtKind[] = [];
  let counter: { inc(labels: { kind: UncaughtKind }): void } | undefined;
  const caught = (kind: UncaughtKind, value: unknown) => {
    if (counter) counter.inc({ kind });
    else early.push(kind);
    log.error({ kind, err: describe(value) }, "uncaught error: kept serving");
  };
  const onRejection = (reason: unknown) => caught("unhandled_rejection", reason);
  const onException = (err: Error) => caught("uncaught_exception", err);
  process.on("unhandledRejection", onRejection);
  process.on("uncaughtException", onException);
  return {
    countInto(c) {
      counter = c;
      for (const kind of early.splice(0)) c.inc({ kind });
    },
    uninstall() {
      process.off("unhandledRejection", onRejection);
      process.off("uncaughtException", onException);
    },
  };
}
