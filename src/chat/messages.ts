// Sending, history and read/delivery markers. `send` is the one domain function behind both the socket event and
// the HTTP route: authorise (member?), validate, persist idempotently, fan out to every member's devices. Markers
// are written in batches by the MarkerWriter and announced by the ReceiptAnnouncer.
import type { Db } from "../db/client.js";
import { notFound, payloadTooLarge } from "../errors.js";
import type { Message } from "../protocol/types.js";
import type { Conversations } from "./conversations.js";
import { MESSAGE_COLUMNS, type MessageRow, toMessage } from "./message-rows.js";
import type { MarkerWriter } from "./marker-writer.js";
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
    private readonly markers: MarkerWriter,
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
    this.refuseInvalid(input);
    // A system sender (a service posting, see http/routes/service-routes.ts) is not a member: the writer skips
    // the membership check for it and nothing else.
    const stored = await this.writer.write({ senderId, ...input, systemSender: options.systemSender === true });
    // A retry finds its message stored: fan it out again, since the pod that committed it may have died before its
    // fan-out (clients de-duplicate by id; push de-duplicates per subscription, conversation and newest seq).
    if (stored.created || stored.alreadyStored) this.fanOut(stored, !stored.created);
    return { message: stored.message, created: stored.created };
  }

  /**
   * Throws what `send` would refuse before touching the database (content too long, an id that names nothing), so a
   * caller with work to do before sending (a service's system user to create) can refuse first and leave nothing.
   */
  refuseInvalid(input: Pick<SendInput, "conversationId" | "content">): void {
    const length = countCodePoints(input.content);
    if (length > this.maxChars) {
      throw payloadTooLarge(`content is longer than ${this.maxChars} characters`, {
        field: "content",
        maxChars: this.maxChars,
        length,
      });
    }
    if (!isUuid(input.conversationId)) throw notFound();
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

  /**
   * Moves the reader's read marker forward (never back, never past the last message); resolves once it is committed.
   * Members hear of it through the receipt announcer (receipt-announcer.ts). `originSocketId`: the device it came
   * from, which needs no echo.
   */
  async markRead(userId: string, conversationId: string, seq: number, originSocketId?: string): Promise<void> {
    if (!isUuid(conversationId)) throw notFound();
    await this.markers.move({ conversationId, userId, kind: "read", seq, originSocketId });
  }

  /** Records that a device of this user has everything up to `seq`; resolves once it is committed. */
  async markDelivered(userId: string, conversationId: string, seq: number): Promise<void> {
    if (!isUuid(conversationId)) throw notFound();
    await this.markers.move({ conversationId, userId, kind: "delivered", seq });
  }

  private fanOut(stored: StoredSend, repeated: boolean): void {
    this.notifier.toUsers(
      stored.members.map((m) => m.userId),
      "message:new",
      stored.message,
    );
    for (const listener of this.storedListeners) listener(stored.message, stored.members, { repeated });
  }
}

function countCodePoints(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}
