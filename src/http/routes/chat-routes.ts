// /v1 users, conversations, members, history and sending: thin adapters from HTTP to the chat domain.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Accounts } from "../../auth/accounts.js";
import type { Conversations } from "../../chat/conversations.js";
import type { Messages } from "../../chat/messages.js";
import * as schemas from "@chat-gateway/protocol/schemas";
import { searchUsers } from "../../chat/users.js";
import type { Db } from "../../db/client.js";
import type { Reads } from "../../db/reads.js";
import type { Conversation } from "@chat-gateway/protocol";
import { notFound } from "../../errors.js";
import type { RateLimiters } from "../../limits/rate-limits.js";
import { bearerOperation, ConversationSchema, MessageSchema, pathParams, PublicUserSchema } from "../api-schemas.js";
import { callerOf, requireUser, userOf } from "../authenticate.js";
import { documentedOnly } from "../zod-schemas.js";
import { ServiceSendBody } from "./service-routes.js";

export interface ChatRouteDeps {
  db: Db;
  /** Where reads that may lag go (the read replica, if any). */
  reads: Reads;
  accounts: Accounts;
  conversations: Conversations;
  messages: Messages;
  limits: RateLimiters;
  /** Handles POST /v1/conversations/:id/messages for service tokens; absent, they are refused. */
  publishAsService?: ((request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>) | undefined;
}

/** The last messages' attachments, with download URLs: these answers go to members. */
async function withLastMessageFiles(messages: Messages, conversations: Conversation[]): Promise<void> {
  await messages.withAttachments(conversations.flatMap((c) => (c.lastMessage === null ? [] : [c.lastMessage])));
}

const conversationAnswer = z.strictObject({ conversation: ConversationSchema });
const messageAnswer = z.strictObject({ message: MessageSchema });
const byId = pathParams("id");
const byMember = pathParams("id", "userId");
/** A user's send, or a service token's post as a system sender (README, "Server-side publishing"). */
const SendOrPublishBody = z.union([schemas.SendBody, ServiceSendBody]);

export function chatRoutes(instance: FastifyInstance, deps: ChatRouteDeps): void {
  const app = instance.withTypeProvider<ZodTypeProvider>();

  app.get(
    "/v1/users/me",
    { schema: bearerOperation("users", "The caller", {}, { 200: PublicUserSchema }, ["not_found"]) },
    async (request) => {
      const user = await deps.accounts.getUser(userOf(request));
      if (user === null) throw notFound("user");
      return user;
    },
  );

  const findUsers = bearerOperation(
    "users",
    "Find users by username prefix",
    { querystring: schemas.UserSearchQuery },
    { 200: z.strictObject({ users: z.array(PublicUserSchema) }) },
    [],
  );
  app.get("/v1/users", { schema: findUsers, preValidation: requireUser }, async (request) => ({
    users: await deps.reads.read("user_search", (db) => searchUsers(db, request.query.query)),
  }));

  const create = bearerOperation(
    "conversations",
    "Open a direct conversation (or find the existing one) or create a group",
    { body: schemas.CreateConversationBody },
    {
      201: conversationAnswer.describe("created"),
      200: conversationAnswer.describe("the direct conversation that already existed"),
    },
    ["forbidden", "not_found", "payload_too_large"],
  );
  app.post("/v1/conversations", { schema: create }, async (request, reply) => {
    const body = request.body;
    const userId = userOf(request);
    if (body.type === "group") await deps.limits.groups.consume(userId);
    const { conversation, created } = await deps.conversations.create(userId, body);
    return reply.code(created ? 201 : 200).send({ conversation });
  });

  const list = bearerOperation(
    "conversations",
    "The caller's conversations, most recent first",
    { querystring: schemas.PageQuery },
    { 200: z.strictObject({ conversations: z.array(ConversationSchema), nextCursor: z.string().nullable() }) },
    [],
  );
  app.get("/v1/conversations", { schema: list }, async (request) => {
    const { limit, cursor } = request.query;
    const page = await deps.conversations.list(userOf(request), limit ?? 50, cursor);
    await withLastMessageFiles(deps.messages, page.conversations);
    return page;
  });

  const get = bearerOperation(
    "conversations",
    "One conversation of the caller",
    { params: byId },
    { 200: conversationAnswer },
    ["not_found"],
  );
  app.get("/v1/conversations/:id", { schema: get }, async (request) => {
    const conversation = await deps.conversations.get(userOf(request), request.params.id);
    await withLastMessageFiles(deps.messages, [conversation]);
    return { conversation };
  });

  const update = bearerOperation(
    "conversations",
    "Mute or unmute (for the caller), or rename a group",
    { params: byId, body: schemas.UpdateConversationBody },
    { 200: conversationAnswer },
    ["forbidden", "not_found", "payload_too_large"],
  );
  app.patch("/v1/conversations/:id", { schema: update }, async (request) => ({
    conversation: await deps.conversations.update(userOf(request), request.params.id, request.body),
  }));

  const addMember = bearerOperation(
    "conversations",
    "Add a member to a group",
    { params: byId, body: schemas.AddMemberBody },
    { 201: conversationAnswer },
    ["forbidden", "not_found", "conflict", "payload_too_large"],
  );
  app.post("/v1/conversations/:id/members", { schema: addMember }, async (request, reply) => {
    const conversation = await deps.conversations.addMember(userOf(request), request.params.id, request.body.userId);
    return reply.code(201).send({ conversation });
  });

  const removeMember = bearerOperation(
    "conversations",
    "Leave a group, or (group admins) remove a member",
    { params: byMember },
    { 204: "removed" },
    ["forbidden", "not_found"],
  );
  app.delete("/v1/conversations/:id/members/:userId", { schema: removeMember }, async (request, reply) => {
    await deps.conversations.removeMember(userOf(request), request.params.id, request.params.userId);
    return reply.code(204).send();
  });

  const setRole = bearerOperation(
    "conversations",
    "Promote or demote a member of a group (group admins)",
    { params: byMember, body: schemas.SetRoleBody },
    { 200: conversationAnswer },
    ["forbidden", "not_found", "payload_too_large"],
  );
  app.patch("/v1/conversations/:id/members/:userId", { schema: setRole }, async (request) => ({
    conversation: await deps.conversations.setRole(
      userOf(request),
      request.params.id,
      request.params.userId,
      request.body.role,
    ),
  }));

  const history = bearerOperation(
    "messages",
    "A page of history, by seq",
    { params: byId, querystring: schemas.HistoryQuery },
    { 200: z.strictObject({ messages: z.array(MessageSchema), hasMore: z.boolean() }) },
    ["not_found"],
  );
  app.get("/v1/conversations/:id/messages", { schema: history }, async (request) =>
    deps.messages.history(userOf(request), request.params.id, request.query),
  );

  const send = bearerOperation(
    "messages",
    "Send a message (idempotent on clientMsgId)",
    {
      params: byId,
      body: SendOrPublishBody,
      description:
        "A user token sends `{clientMsgId, content?, replyToId?, attachmentIds?}`; a service token posts as the " +
        "system sender `system:<sub>` with `{clientMsgId, content, senderName?}`. 200 answers a retry of a message " +
        "already stored.",
    },
    { 201: messageAnswer.describe("stored"), 200: messageAnswer.describe("already stored (a retry)") },
    ["forbidden", "not_found", "payload_too_large"],
  );
  // The body's shape depends on the token, so the handlers validate it (SendBody here, ServiceSendBody there).
  app.post(
    "/v1/conversations/:id/messages",
    { schema: send, validatorCompiler: documentedOnly },
    async (request, reply) => {
      // Service tokens post as a system sender (routes/service-routes.ts); every other route refuses them.
      if (deps.publishAsService && callerOf(request).role === "service") return deps.publishAsService(request, reply);
      const userId = userOf(request);
      const body = schemas.SendBody.parse(request.body);
      await deps.limits.send.consume(userId);
      const { message, created } = await deps.messages.send(userId, { conversationId: request.params.id, ...body });
      return reply.code(created ? 201 : 200).send({ message });
    },
  );

  const read = bearerOperation(
    "messages",
    "Mark the conversation read up to seq",
    { params: byId, body: schemas.ReadBody },
    { 204: "marked" },
    ["not_found", "payload_too_large"],
  );
  app.post("/v1/conversations/:id/read", { schema: read }, async (request, reply) => {
    await deps.messages.markRead(userOf(request), request.params.id, request.body.seq);
    return reply.code(204).send();
  });
}
