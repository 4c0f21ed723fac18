// HTTP mirrors of the message-changing socket events: PATCH/DELETE a message, PUT/DELETE a reaction.
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { MessageChanges, MessageRef } from "../../chat/message-changes.js";
import * as schemas from "@chat-gateway/protocol/schemas";
import type { RateLimiters } from "../../limits/rate-limits.js";
import { userOf } from "../authenticate.js";

const MESSAGE = "/v1/conversations/:id/messages/:messageId";

function refOf(request: FastifyRequest): MessageRef {
  const params = request.params as Record<string, string>;
  return { conversationId: params.id!, messageId: params.messageId! };
}

export function messageChangeRoutes(
  app: FastifyInstance,
  deps: { changes: MessageChanges; limits: RateLimiters },
): void {
  /** The caller, after the same per-user limit as sends. */
  const actor = async (request: FastifyRequest) => {
    const userId = userOf(request);
    await deps.limits.send.consume(userId);
    return userId;
  };

  app.patch(MESSAGE, async (request) => {
    const { content } = schemas.EditBody.parse(request.body);
    return { message: await deps.changes.edit(await actor(request), refOf(request), content) };
  });

  app.delete(MESSAGE, async (request) => ({
    message: await deps.changes.delete(await actor(request), refOf(request)),
  }));

  // The emoji arrives URL-encoded in the path; Fastify decodes it.
  const react = (on: boolean) => async (request: FastifyRequest) => {
    const emoji = (request.params as Record<string, string>).emoji!;
    return { message: await deps.changes.react(await actor(request), { ...refOf(request), emoji, on }) };
  };
  app.put(`${MESSAGE}/reactions/:emoji`, react(true));
  app.delete(`${MESSAGE}/reactions/:emoji`, react(false));
}
