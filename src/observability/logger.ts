// Structured JSON logs. Tokens, passwords and message bodies never reach a log line: request bodies are not logged
// at all, and the headers that carry credentials are redacted.
import pino, { type Logger } from "pino";

export function createLogger(level: string): Logger {
  return pino({
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
  });
}
