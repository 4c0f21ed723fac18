// Structured JSON logs. Tokens, passwords and message bodies never reach a log line: request bodies are not logged
// at all, and the headers that carry credentials are redacted.
import pino, { type Logger } from "pino";
import { createRequire } from "node:module";

export type LogFormat = "json" | "pretty";

/** `auto` is readable lines on a developer's terminal, JSON wherever logs are collected (a pipe, production). */
export function logFormat(setting: "auto" | LogFormat): LogFormat {
  if (setting !== "auto") return setting;
  return process.stdout.isTTY && process.env.NODE_ENV !== "production" ? "pretty" : "json";
}

export function createLogger(level: string, format: LogFormat = "json"): Logger {
  // pino-pretty is for a developer's terminal only: loaded (synchronously, the logger is made before anything else)
  // only when asked for, so production pods, which log JSON, never hold it.
  const destination = format === "pretty" ? prettyStream() : undefined;
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: {
        paths: [
          "req.headers.authorization",
          "req.headers.cookie",
          "headers.authorization",
          "token",
          "accessToken",
          "refreshToken",
          "password",
          "content",
          "*.token",
          "*.password",
          "*.content",
        ],
        censor: "[redacted]",
      },
    },
    destination,
  );
}

function prettyStream(): NodeJS.WritableStream {
  const pretty = createRequire(import.meta.url)("pino-pretty") as typeof import("pino-pretty");
  return pretty({ colorize: true, sync: true });
}
