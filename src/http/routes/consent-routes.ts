// /v1 consent and safety: accepting a message request, and blocking users. Thin adapters to chat/message-requests.ts
// and chat/blocks.ts.
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Blocks } from "../../chat/blocks.js";
import type { MessageRequests } from "../../chat/message-requests.js";
import { userOf } from "../authenticate.js";

const idParam = (request: FastifyRequest): string => (request.params as Record<string, string>).id!;

export function consentRoutes(app: FastifyInstance, deps: { requests: MessageRequests; blocks: Blocks }): void {
  app.post("/v1/conversations/:id/accept", async (request) => ({
    conversation: await deps.requests.accept(userOf(request), idParam(request)),
  }));

  app.get("/v1/users/me/blocks", async (request) => ({ users: await deps.blocks.list(userOf(request)) }));

  app.put("/v1/users/:id/block", async (request, reply) => {
    await deps.blocks.block(userOf(request), idParam(request));
    return reply.code(204).send();
  });

  app.delete("/v1/users/:id/block", async (request, reply) => {
    await deps.blocks.unblock(userOf(request), idParam(request));
    return reply.code(204).send();
  });
}
