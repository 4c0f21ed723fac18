// HTTP mirrors of the message-changing socket events: PATCH/DELETE a message, PUT/DELETE a reaction.
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { MessageChanges, MessageRef } from "../../chat/message-changes.js";
import * as schemas from "@chat-gateway/protocol/schemas";
import type { RateLimiters } from "../../limits/rate-limits.js";
import { bearerOperation, MessageSchema, pathParams } from "../api-schemas.js";
import { userOf } from "../authenticate.js";

const MESSAGE = "/v1/conversations/:id/messages/:messageId";
const byMessage = pathParams("id", "messageId");
const byReaction = pathParams("id", "messageId", "emoji");
const messageAnswer = { 200: z.strictObject({ message: MessageSchema }) };

function refOf(params: { id: string; messageId: string }): MessageRef {
  return { conversationId: params.id, messageId: params.messageId };
}

export function messageChangeRoutes(
  instance: FastifyInstance,
  deps: { changes: MessageChanges; limits: RateLimiters },
): void {
  const app = instance.withTypeProvider<ZodTypeProvider>();
  /** The caller, after the same per-user limit as sends. */
  const actor = async (request: FastifyRequest) => {
    const userId = userOf(request);
    await deps.limits.send.consume(userId);
    return userId;
  };

  const edit = bearerOperation(
    "messages",
    "Edit one's own message",
    { params: byMessage, body: schemas.EditBody },
    messageAnswer,
    ["forbidden", "not_found", "payload_too_large"],
  );
  app.patch(MESSAGE, { schema: edit }, async (request) => ({
    message: await deps.changes.edit(await actor(request), refOf(request.params), request.body.content),
  }));

  const remove = bearerOperation(
    "messages",
    "Delete a message (one's own; group admins any): it becomes a tombstone",
    { params: byMessage },
    messageAnswer,
    ["forbidden", "not_found"],
  );
  app.delete(MESSAGE, { schema: remove }, async (request) => ({
    message: await deps.changes.delete(await actor(request), refOf(request.params)),
  }));

  // The emoji arrives URL-encoded in the path; Fastify decodes it, the domain checks it (chat/emoji.ts).
  const react = (on: boolean) => async (request: FastifyRequest<{ Params: z.infer<typeof byReaction> }>) => {
    const emoji = request.params.emoji;
    return { message: await deps.changes.react(await actor(request), { ...refOf(request.params), emoji, on }) };
  };
  const reaction = (summary: string) =>
    bearerOperation("messages", summary, { params: byReaction }, messageAnswer, ["forbidden", "not_found"]);
  app.put(
    `${MESSAGE}/reactions/:emoji`,
    { schema: reaction("Add the caller's reaction (URL-encoded emoji)") },
    react(true),
  );
  app.delete(`${MESSAGE}/reactions/:emoji`, { schema: reaction("Remove the caller's reaction") }, react(false));
}
