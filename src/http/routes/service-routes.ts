// Server-side publishing: another backend service posts into a conversation as a named system sender.
//
// A service token (HS256, role "service", signed with a SERVICE_KEYS key bound to that name, or the legacy
// SERVICE_JWT_SECRET) names the service in `sub`. The gateway
// posts as the system user `system:<sub>` (users.is_system: it cannot log in and is never listed in user search),
// created on first use; `senderName` only sets its display name. The system user is not a member of the
// conversation: the domain's send is called with `systemSender`, which lets the writer skip the membership check,
// so seq allocation, idempotency on (sender, clientMsgId) and fan-out are exactly those of a user's send.
import { randomUUID } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { Messages } from "../../chat/messages.js";
import { clientMsgId, content, displayName } from "@chat-gateway/protocol/schemas";
import type { Db } from "../../db/client.js";
import { isUniqueViolation, notFound, unauthorized } from "../../errors.js";
import { callerOf } from "../authenticate.js";

export const ServiceSendBody = z.strictObject({ clientMsgId, content, senderName: displayName.optional() });

const SERVICE_NAME = /^[a-z0-9_.-]{1,64}$/;

export const systemUsername = (service: string) => `system:${service}`;

export interface ServicePublishDeps {
  db: Db;
  messages: Messages;
}

/** The handler the /v1 send route delegates to when the caller holds a service token. */
export function servicePublisher(deps: ServicePublishDeps) {
  const systemUsers = new SystemUsers(deps.db);
  return async function publishAsService(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const caller = callerOf(request);
    if (caller.role !== "service" || !SERVICE_NAME.test(caller.userId))
      throw unauthorized("a service token is required");
    const body = ServiceSendBody.parse(request.body);
    const conversationId = (request.params as Record<string, string>).id!;
    // Refused before the system user is created or renamed: a refused post leaves nothing behind.
    deps.messages.refuseInvalid({ conversationId, content: body.content });
    if ((await deps.db.conversation.count({ where: { id: conversationId } })) === 0) throw notFound();
    const senderId = await systemUsers.idFor(caller.userId, body.senderName ?? caller.userId);
    const { message, created } = await deps.messages.send(
      senderId,
      { conversationId, clientMsgId: body.clientMsgId, content: body.content },
      { systemSender: true },
    );
    return reply.code(created ? 201 : 200).send({ message });
  };
}

class SystemUsers {
  private readonly known = new Map<string, { id: string; displayName: string }>();

  constructor(private readonly db: Db) {}

  async idFor(service: string, displayName: string): Promise<string> {
    const cached = this.known.get(service);
    if (cached !== undefined && cached.displayName === displayName) return cached.id;
    const username = systemUsername(service);
    const upsert = () =>
      this.db.user.upsert({
        where: { username },
        // A password hash no verifier accepts; login refuses system users before even checking it.
        create: { id: randomUUID(), username, displayName, passwordHash: "!system", isSystem: true },
        update: { displayName },
        select: { id: true },
      });
    // Two pods creating the same system user at once: the loser's insert conflicts, and its retry finds the row.
    const user = await upsert().catch((err: unknown) => {
      if (isUniqueViolation(err)) return upsert();
      throw err;
    });
    this.known.set(service, { id: user.id, displayName });
    return user.id;
  }
}
