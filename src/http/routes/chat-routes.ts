// /v1 users, conversations, members, history and sending: thin adapters from HTTP to the chat domain.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
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
import { callerOf, userOf } from "../authenticate.js";

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

const idParam = (request: FastifyRequest, name = "id"): string => (request.params as Record<string, string>)[name]!;

export function chatRoutes(app: FastifyInstance, deps: ChatRouteDeps): void {
  app.get("/v1/users/me", async (request) => {
    const user = await deps.accounts.getUser(userOf(request));
    if (user === null) throw notFound("user");
    return user;
  });

  app.get("/v1/users", async (request) => {
    userOf(request);
    const { query } = schemas.UserSearchQuery.parse(request.query);
    return { users: await deps.reads.read("user_search", (db) => searchUsers(db, query)) };
  });

  app.post("/v1/conversations", async (request, reply) => {
    const body = schemas.CreateConversationBody.parse(request.body);
    const userId = userOf(request);
    if (body.type === "group") await deps.limits.groups.consume(userId);
    const { conversation, created } = await deps.conversations.create(userId, body);
    return reply.code(created ? 201 : 200).send({ conversation });
  });

  app.get("/v1/conversations", async (request) => {
    const { limit, cursor } = schemas.PageQuery.parse(request.query);
    const page = await deps.conversations.list(userOf(request), limit ?? 50, cursor);
    await withLastMessageFiles(deps.messages, page.conversations);
    return page;
  });

  app.get("/v1/conversations/:id", async (request) => {
    const conversation = await deps.conversations.get(userOf(request), idParam(request));
    await withLastMessageFiles(deps.messages, [conversation]);
    return { conversation };
  });

  app.patch("/v1/conversations/:id", async (request) => {
    const body = schemas.UpdateConversationBody.parse(request.body);
    return { conversation: await deps.conversations.update(userOf(request), idParam(request), body) };
  });

  app.post("/v1/conversations/:id/members", async (request, reply) => {
    const { userId } = schemas.AddMemberBody.parse(request.body);
    const conversation = await deps.conversations.addMember(userOf(request), idParam(request), userId);
    return reply.code(201).send({ conversation });
  });

  app.delete("/v1/conversations/:id/members/:userId", async (request, reply) => {
    await deps.conversations.removeMember(userOf(request), idParam(request), idParam(request, "userId"));
    return reply.code(204).send();
  });

  // Promote or demote a member of a group; admins only.
  app.patch("/v1/conversations/:id/members/:userId", async (request) => {
    const { role } = schemas.SetRoleBody.parse(request.body);
    const actor = userOf(request);
    return {
      conversation: await deps.conversations.setRole(actor, idParam(request), idParam(request, "userId"), role),
    };
  });

  app.get("/v1/conversations/:id/messages", async (request) => {
    const query = schemas.HistoryQuery.parse(request.query);
    return deps.messages.history(userOf(request), idParam(request), query);
  });

  app.post("/v1/conversations/:id/messages", async (request, reply) => {
    // Service tokens post as a system sender (routes/service-routes.ts); every other route refuses them.
    if (deps.publishAsService && callerOf(request).role === "service") return deps.publishAsService(request, reply);
    const userId = userOf(request);
    const body = schemas.SendBody.parse(request.body);
    await deps.limits.send.consume(userId);
    const { message, created } = await deps.messages.send(userId, { conversationId: idParam(request), ...body });
    return reply.code(created ? 201 : 200).send({ message });
  });

  app.post("/v1/conversations/:id/read", async (request, reply) => {
    const { seq } = schemas.ReadBody.parse(request.body);
    await deps.messages.markRead(userOf(request), idParam(request), seq);
    return reply.code(204).send();
  });
}
