// Sending, history and read/delivery markers. `send` is the one domain function behind both the socket event and
// the HTTP route: authorise (member?), validate, persist idempotently, fan out to every member's devices.
import type { Db } from "../db/client.js";
import { notFound, payloadTooLarge } from "../errors.js";
import type { Message } from "../protocol/types.js";
import type { Conversations } from "./conversations.js";
import { MESSAGE_COLUMNS, type MessageRow, toMessage } from "./message-rows.js";
import type { MessageWriter, StoredSend } from "./message-writer.js";
import { isUuid, type MessageStoredListener, type Notifier } from "./ports.js";

export interface SendInput {
  conversationId: string;
  clientMsgId: string;
  content: string;
}

export interface HistoryPage {
  messages: Message[];
  hasMore: boolean;
}

export class Messages {
  private readonly storedListeners: MessageStoredListener[] = [];

  constructor(
    private readonly db: Db,
    private readonly writer: MessageWriter,
    private readonly conversations: Conversations,
    private readonly notifier: Notifier,
    private readonly maxChars: number,
  ) {}

  onStored(listener: MessageStoredListener): void {
    this.storedListeners.push(listener);
  }

  /** Resolves once the message is committed; `created` is false for a retried clientMsgId. */
  async send(
    senderId: string,
    input: SendInput,
    options: { systemSender?: boolean } = {},
  ): Promise<{ message: Message; created: boolean }> {
    const length = countCodePoints(input.content);
    if (length > this.maxChars) {
      throw payloadTooLarge(`content is longer than ${this.maxChars} characters`, {
        field: "content",
        maxChars: this.maxChars,
        length,
      });
    }
    if (!isUuid(input.conversationId)) throw notFound();
    // A system sender (a service posting, see http/routes/service-routes.ts) is not a member: the writer skips
    // the membership check for it and nothing else.
    const stored = await this.writer.write({ senderId, ...input, systemSender: options.systemSender === true });
    if (stored.created) this.fanOut(stored);
    return { message: stored.message, created: stored.created };
  }

  async history(
    viewerId: string,
    conversationId: string,
    query: { before?: number | undefined; after?: number | undefined; limit?: number | undefined },
  ): Promise<HistoryPage> {
    await this.conversations.requireMember(viewerId, conversationId);
    const limit = query.limit ?? 50;
    const select = `SELECT ${MESSAGE_COLUMNS} FROM messages m`;
    let rows;
    if (query.after !== undefined) {
      rows = await this.db.$queryRawUnsafe<MessageRow[]>(
        `${select} WHERE conversation_id = $1::uuid AND seq > $2 ORDER BY seq ASC LIMIT $3`,
        conversationId,
        query.after,
        limit + 1,
      );
      const hasMore = rows.length > limit;
      return { messages: rows.slice(0, limit).map(toMessage), hasMore };
    }
    // Newest first to take the page, then ascending for the answer.
    rows = await this.db.$queryRawUnsafe<MessageRow[]>(
      `${select} WHERE conversation_id = $1::uuid AND seq < $2 ORDER BY seq DESC LIMIT $3`,
      conversationId,
      query.before ?? 2_147_483_647,
      limit + 1,
    );
    const hasMore = rows.length > limit;
    return { messages: rows.slice(0, limit).reverse().map(toMessage), hasMore };
  }

  /** Moves the reader's read marker forward (never back, never past the last message) and tells every member. */
  async markRead(userId: string, conversationId: string, seq: number): Promise<void> {
    await this.moveMarker("read_seq", "conversation:read", userId, conversationId, seq);
  }

  /** Records that a device of this user has everything up to `seq`, and tells every member. */
  async markDelivered(userId: string, conversationId: string, seq: number): Promise<void> {
    await this.moveMarker("delivered_seq", "conversation:delivered", userId, conversationId, seq);
  }

  private async moveMarker(
    column: "read_seq" | "delivered_seq",
    event: "conversation:read" | "conversation:delivered",
    userId: string,
    conversationId: string,
    seq: number,
  ): Promise<void> {
    if (!isUuid(conversationId)) throw notFound();
    // One statement: membership, the forward-only rule and the clamp to last_seq, race-free.
    const moved = await this.db.$queryRawUnsafe<{ seq: number }[]>(
      `UPDATE members m SET ${column} = LEAST($3::int, c.last_seq)
         FROM conversations c
        WHERE m.conversation_id = $1::uuid AND m.user_id = $2::uuid AND c.id = m.conversation_id
          AND m.${column} < LEAST($3::int, c.last_seq)
        RETURNING m.${column} AS seq`,
      conversationId,
      userId,
      seq,
    );
    if (moved.length === 0) {
      // Nothing moved: either a stale marker (fine, acked ok) or not a member (not_found).
      await this.conversations.requireMember(userId, conversationId);
      return;
    }
    const members = await this.memberIds(conversationId);
    this.notifier.toUsers(members, event, { conversationId, userId, seq: Number(moved[0]!.seq) });
  }

  private async memberIds(conversationId: string): Promise<string[]> {
    const rows = await this.db.member.findMany({ where: { conversationId }, select: { userId: true } });
    return rows.map((r) => r.userId);
  }

  private fanOut(stored: StoredSend): void {
    this.notifier.toUsers(
      stored.members.map((m) => m.userId),
      "message:new",
      stored.message,
    );
    for (const listener of this.storedListeners) listener(stored.message, stored.members);
  }
}

function countCodePoints(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}
