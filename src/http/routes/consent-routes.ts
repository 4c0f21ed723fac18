// /v1 consent and safety: accepting a message request, and blocking users. Thin adapters to chat/message-requests.ts
// and chat/blocks.ts.
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Blocks } from "../../chat/blocks.js";
import type { MessageRequests } from "../../chat/message-requests.js";
import { bearerOperation, ConversationSchema, pathParams, PublicUserSchema } from "../api-schemas.js";
import { userOf } from "../authenticate.js";

const byId = pathParams("id");

export function consentRoutes(instance: FastifyInstance, deps: { requests: MessageRequests; blocks: Blocks }): void {
  const app = instance.withTypeProvider<ZodTypeProvider>();

  const accept = bearerOperation(
    "conversations",
    "Accept a message request (the recipient of a pending direct conversation)",
    { params: byId },
    { 200: z.strictObject({ conversation: ConversationSchema }) },
    ["forbidden", "not_found"],
  );
  app.post("/v1/conversations/:id/accept", { schema: accept }, async (request) => ({
    conversation: await deps.requests.accept(userOf(request), request.params.id),
  }));

  const blocked = bearerOperation(
    "users",
    "The users the caller blocks",
    {},
    { 200: z.strictObject({ users: z.array(PublicUserSchema) }) },
    [],
  );
  app.get("/v1/users/me/blocks", { schema: blocked }, async (request) => ({
    users: await deps.blocks.list(userOf(request)),
  }));

  const block = bearerOperation("users", "Block a user", { params: byId }, { 204: "blocked" }, ["not_found"]);
  app.put("/v1/users/:id/block", { schema: block }, async (request, reply) => {
    await deps.blocks.block(userOf(request), request.params.id);
    return reply.code(204).send();
  });

  const unblock = bearerOperation("users", "Unblock a user", { params: byId }, { 204: "unblocked" }, ["not_found"]);
  app.delete("/v1/users/:id/block", { schema: unblock }, async (request, reply) => {
    await deps.blocks.unblock(userOf(request), request.params.id);
    return reply.code(204).send();
  });
}
