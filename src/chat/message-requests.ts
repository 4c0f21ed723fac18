// Message requests: a direct conversation opened by someone the other person never answered. Until the recipient
// replies (their first message accepts it, in the send statement itself: message-writer.ts) or calls accept, the
// requester's messages are delivered and stored as usual, but nothing about the recipient flows back to the
// requester: no presence (presence/visibility.ts), no typing (realtime/typing.ts), no read or delivered markers
// (receipt-announcer.ts, and masked in conversation objects: conversation-views.ts), and the recipient's push says
// "message request" instead of the content (push/push-service.ts).
import type { Db } from "../db/client.js";
import { forbidden } from "../errors.js";
import type { Conversation, MessageRequest } from "@chat-gateway/protocol";
import type { Conversations } from "./conversations.js";

/** The request state of a conversation row, as the conversation object shows it: null when it never was one. */
export function requestOf(row: { requestedBy: string | null; acceptedAt: Date | null }): MessageRequest | null {
  if (row.requestedBy === null) return null;
  return { state: row.acceptedAt === null ? "pending" : "accepted", requestedBy: row.requestedBy };
}

/** Whether `viewerId` is the requester of a still pending request: the one who must not see the other's state. */
export function isPendingRequester(
  row: { requestedBy: string | null; acceptedAt: Date | null },
  viewerId: string,
): boolean {
  return row.requestedBy === viewerId && row.acceptedAt === null;
}

export class MessageRequests {
  constructor(
    private readonly db: Db,
    private readonly conversations: Conversations,
  ) {}

  /**
   * The recipient accepts: presence, typing and receipts flow both ways from now on. Idempotent, and a no-op for a
   * direct conversation that never was a request. The requester cannot accept their own request (`forbidden`), nor
   * can a group be accepted; not a member is `not_found`.
   */
  async accept(actorId: string, conversationId: string): Promise<Conversation> {
    const conversation = await this.conversations.requireMember(actorId, conversationId);
    if (conversation.type !== "direct") throw forbidden("only a direct conversation can be accepted");
    const row = await this.db.conversation.findUniqueOrThrow({
      where: { id: conversationId },
      select: { requestedBy: true, acceptedAt: true },
    });
    if (isPendingRequester(row, actorId)) throw forbidden("only the recipient can accept a message request");
    if (row.requestedBy !== null && row.acceptedAt === null) {
      // Conditional, so two accepts (or an accept racing the recipient's first reply) announce once.
      const { count } = await this.db.conversation.updateMany({
        where: { id: conversationId, acceptedAt: null },
        data: { acceptedAt: new Date() },
      });
      if (count > 0) await this.conversations.announceChange(conversationId);
    }
    return this.conversations.get(actorId, conversationId);
  }
}
