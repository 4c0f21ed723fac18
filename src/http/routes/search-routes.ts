// /v1/search: message search over the caller's own conversations (the domain is chat/search.ts).
import type { FastifyInstance } from "fastify";
import { SearchMessagesQuery } from "@chat-gateway/protocol/schemas";
import type { MessageSearch } from "../../chat/search.js";
import type { RateLimiters } from "../../limits/rate-limits.js";
import { userOf } from "../authenticate.js";

export interface SearchRouteDeps {
  search: MessageSearch;
  limits: Pick<RateLimiters, "search">;
}

export function searchRoutes(app: FastifyInstance, deps: SearchRouteDeps): void {
  // The query string is what someone looks for in their messages: the request log lines (info), which carry the URL,
  // are left out for this route, so it never reaches the logs. Errors are still logged (without the URL).
  app.get("/v1/search/messages", { logLevel: "warn" }, async (request) => {
    const userId = userOf(request);
    const query = SearchMessagesQuery.parse(request.query);
    await deps.limits.search.consume(userId);
    return deps.search.search(userId, query);
  });
}
