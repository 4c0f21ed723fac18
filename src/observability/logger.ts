// Structured JSON logs. Tokens, passwords and message bodies never reach a log line: request bodies are not logged
// at all, and the headers that carry credentials are redacted.
import pino, { type Logger } from "pino";
import pretty from "pino-pretty";

export type LogFormat = "json" | "pretty";

/** `auto` is readable lines on a developer's terminal, JSON wherever logs are collected (a pipe, production). */
export function logFormat(setting: "auto" | LogFormat): LogFormat {
  if (setting !== "auto") return setting;
  return process.stdout.isTTY && process.env.NODE_ENV !== "production" ? "pretty" : "json";
}

export function createLogger(level: string, format: LogFormat = "json"): Logger {
  const destination = format === "pretty" ? pretty({ colorize: true, sync: true }) : undefined;
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
