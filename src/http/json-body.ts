// JSON bodies are read as UTF-8, so one declared in another charset (`application/json; charset=utf-16`) is refused
// rather than read as what it is not: its bytes would be parsed as UTF-8 and the request acted on (a `{}` that
// suspended a user from a request the client encoded otherwise). Fastify's own JSON parser ignores the charset; this
// wraps it (same limits, same prototype-poisoning refusal) with that one check.
import type { FastifyInstance } from "fastify";
import { AppError } from "../errors.js";

const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)"?/i;

/** Whether a content type's charset (if any) is UTF-8. */
export function isUtf8Json(contentType: string | undefined): boolean {
  const charset = CHARSET.exec(contentType ?? "")?.[1]?.toLowerCase();
  return charset === undefined || charset === "utf-8" || charset === "utf8";
}

export function useUtf8JsonParser(app: FastifyInstance): void {
  const json = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    if (!isUtf8Json(request.headers["content-type"])) {
      done(new AppError("bad_request", "JSON bodies must be UTF-8 (charset=utf-8 or none)"), undefined);
      return;
    }
    json(request, body as string, done);
  });
}
