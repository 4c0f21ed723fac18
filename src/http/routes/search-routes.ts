// /v1/search: message search over the caller's own conversations (the domain is chat/search.ts).
import type { FastifyInstance } from "fastify";
import { SearchMessagesQuery } from "@chat-gateway/protocol/schemas";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { MessageSearch } from "../../chat/search.js";
import type { RateLimiters } from "../../limits/rate-limits.js";
import { bearerOperation, MessageSchema } from "../api-schemas.js";
import { requireUser, userOf } from "../authenticate.js";

export interface SearchRouteDeps {
  search: MessageSearch;
  limits: Pick<RateLimiters, "search">;
}

export function searchRoutes(instance: FastifyInstance, deps: SearchRouteDeps): void {
  const app = instance.withTypeProvider<ZodTypeProvider>();
  const search = bearerOperation(
    "search",
    "Search the messages of the caller's conversations",
    { querystring: SearchMessagesQuery },
    { 200: z.strictObject({ messages: z.array(MessageSchema), nextCursor: z.string().nullable() }) },
    ["not_found"],
  );
  // The query string is what someone looks for in their messages: the request log lines (info), which carry the URL,
  // are left out for this route, so it never reaches the logs. Errors are still logged (without the URL).
  app.get("/v1/search/messages", { logLevel: "warn", schema: search, preValidation: requireUser }, async (request) => {
    const userId = userOf(request);
    await deps.limits.search.consume(userId);
    return deps.search.search(userId, request.query);
  });
}
