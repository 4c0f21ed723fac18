// Sending, history and read/delivery markers. `send` is the one domain function behind both the socket event and
// the HTTP route: authorise (member?), validate, persist idempotently, fan out to every member's devices. Markers
// are written in batches by the MarkerWriter and announced by the ReceiptAnnouncer.
import type { Db } from "../db/client.js";
import { Reads } from "../db/reads.js";
import { badRequest, notFound, payloadTooLarge } from "../errors.js";
import type { Message, ReplyPreview } from "@chat-gateway/protocol";
import type { Conversations } from "./conversations.js";
import { MESSAGE_COLUMNS, type MessageRow, REPLY_PREVIEW_CHARS, toMessage } from "./message-rows.js";
import type { MarkerWriter } from "./marker-writer.js";
import type { MessageWriter, SendRequest, StoredSend } from "./message-writer.js";
import { isUuid, type MessageAttachments, type MessageStoredListener, type Notifier } from "./ports.js";

export interface SendInput {
  conversationId: string;
  clientMsgId: string;
  /** May be empty (or absent) when the message carries attachments. */
  content?: string | undefined;
  /** The message this one answers: one of the same conversation, else `bad_request`. */
  replyToId?: string | undefined;
  /** Uploads of the sender (POST /v1/uploads) to attach. */
  attachmentIds?: string[] | undefined;
}

export interface HistoryPage {
  messages: Message[];
  hasMore: boolean;
}

export class Messages {
  private readonly storedListeners: MessageStoredListener[] = [];
  /** Fan-outs waiting for the acks of their batch to go out first (fanOutAfterAcks). */
  private fanOuts: { stored: StoredSend; repeated: boolean }[] = [];

  constructor(
    private readonly db: Db,
    private readonly writer: MessageWriter,
    private readonly markers: MarkerWriter,
    private readonly conversations: Conversations,
    private readonly notifier: Notifier,
    private readonly maxChars: number,
    private readonly attachments?: MessageAttachments,
    private readonly reads: Reads = new Reads(db),
  ) {}

  onStored(listener: MessageStoredListener): void {
    this.storedListeners.push(listener);
  }

  /** `unavailable` when a send arriving now would be refused for capacity (the writer's admission control). */
  admission(): Error | undefined {
    return this.writer.admission();
  }

  /** Resolves once the message is committed; `created` is false for a retried clientMsgId. */
  async send(
    senderId: string,
    input: SendInput,
    options: { systemSender?: boolean } = {},
  ): Promise<{ message: Message; created: boolean }> {
    this.refuseInvalid(input);
    const content = input.content ?? "";
    // Only a reply pays for this read: a plain send goes straight to the batched writer.
    const replyTo =
      input.replyToId === undefined ? null : await this.replyPreview(senderId, input, options.systemSender === true);
    const attachmentIds = input.attachmentIds ?? [];
    const request = {
      senderId,
      conversationId: input.conversationId,
      clientMsgId: input.clientMsgId,
      content,
      replyToId: input.replyToId,
      // A system sender (a service posting, see http/routes/service-routes.ts) is not a member: the writer skips
      // the membership check for it and nothing else.
      systemSender: options.systemSender === true,
    };
    // Only a send with attachments pays for claiming and checking them.
    const stored =
      attachmentIds.length === 0
        ? await this.writer.write(request)
        : await this.writeWithAttachments({ ...request, attachmentIds });
    // A retry finds its message stored: fan it out again, since the pod that committed it may have died before its
    // fan-out (clients de-duplicate by id; push de-duplicates per subscription, conversation and newest seq).
    if (stored.alreadyStored) {
      // A retry: the stored message may have been edited, reacted to or deleted since; answer it as it is now.
      stored.message = (await this.load(stored.message.conversationId, stored.message.id)) ?? stored.message;
      await this.attachments?.fill([stored.message]);
    } else stored.message.replyTo = replyTo;
    if (stored.created || stored.alreadyStored) this.fanOutAfterAcks(stored, !stored.created);
    return { message: stored.message, created: stored.created };
  }

  /**
   * Throws what `send` would refuse before touching the database (content too long, an id that names nothing), so a
   * caller with work to do before sending (a service's system user to create) can refuse first and leave nothing.
   */
  refuseInvalid(input: Pick<SendInput, "conversationId" | "content">): void {
    const length = countCodePoints(input.content ?? "");
    if (length > this.maxChars) {
      throw payloadTooLarge(`content is longer than ${this.maxChars} characters`, {
        field: "content",
        maxChars: this.maxChars,
        length,
      });
    }
    if (!isUuid(input.conversationId)) throw notFound();
  }

  /**
   * The preview of the message a send answers, checked to be in the same conversation. Membership is checked first
   * so that a non-member learns nothing about the conversation's messages (`not_found`, as the writer would answer).
   * Messages never move between conversations and a deleted one stays as a tombstone, so the check cannot go stale
   * before the writer inserts the reply.
   */
  private async replyPreview(senderId: string, input: SendInput, systemSender: boolean): Promise<ReplyPreview> {
    const invalid = () =>
      badRequest("replyToId must name a message of this conversation", [
        { field: "replyToId", problem: "not a message of this conversation" },
      ]);
    if (!isUuid(input.replyToId!)) throw invalid();
    const [row] = await this.db.$queryRawUnsafe<{ member: boolean; preview: ReplyPreview | string | null }[]>(
      `SELECT ($4 OR EXISTS (SELECT 1 FROM members WHERE conversation_id = $1::uuid AND user_id = $2::uuid)) AS member,
              (SELECT json_build_object('id', r.id::text, 'seq', r.seq, 'senderId', r.sender_id::text,
                 'content', CASE WHEN r.deleted_at IS NULL THEN left(r.content, ${REPLY_PREVIEW_CHARS}) ELSE '' END)
                 FROM messages r WHERE r.id = $3::uuid AND r.conversation_id = $1::uuid) AS preview`,
      input.conversationId,
      senderId,
      input.replyToId,
      systemSender,
    );
    if (row === undefined || !row.member) throw notFound();
    if (row.preview === null) throw invalid();
    const preview = typeof row.preview === "string" ? (JSON.parse(row.preview) as ReplyPreview) : row.preview;
    return { ...preview, seq: Number(preview.seq) };
  }

  /** One message as it is now, or undefined. */
  private async load(conversationId: string, messageId: string): Promise<Message | undefined> {
    const [row] = await this.db.$queryRawUnsafe<MessageRow[]>(
      `SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE m.id = $1::uuid AND m.conversation_id = $2::uuid`,
      messageId,
      conversationId,
    );
    return row === undefined ? undefined : toMessage(row);
  }

  /**
   * Claims and checks the uploads before the write (async, outside the writer's batch), links them in the message's
   * own statement, and gives the claims back when the write fails, so a failed send leaves no partial state.
   */
  private async writeWithAttachments(request: SendRequest & { attachmentIds: string[] }): Promise<StoredSend> {
    if (this.attachments === undefined) throw badRequest("attachments are not enabled", { field: "attachmentIds" });
    const { senderId, clientMsgId, attachmentIds } = request;
    await this.attachments.claimForSend(senderId, clientMsgId, attachmentIds);
    let stored: StoredSend;
    try {
      stored = await this.writer.write(request);
    } catch (err) {
      await this.attachments.releaseClaim(senderId, clientMsgId, attachmentIds).catch(() => undefined);
      throw err;
    }
    await this.attachments.fill([stored.message]);
    return stored;
  }

  /**
   * A page of history: `after` a seq ascending (what a client's gap fill asks), else the newest `before` a seq. May
   * come from the read replica, but never stops short of what was committed when it was asked: the membership check
   * reads the conversation's last_seq and change counter on the primary, and a replica page that does not reach them
   * (the replica is behind) is read again from the primary instead of answering a hole the client would take for the
   * end, or a message as it was before a change the client may already have passed.
   */
  async history(
    viewerId: string,
    conversationId: string,
    query: { before?: number | undefined; after?: number | undefined; limit?: number | undefined },
  ): Promise<HistoryPage> {
    const limit = query.limit ?? 50;
    const take = limit + 1;
    let rows: HistoryRow[];
    if (this.reads.hasReplica) {
      const mark = await this.conversations.requireMemberWatermark(viewerId, conversationId);
      rows = await this.reads.read(
        "history",
        (db) => historyRows(db, conversationId, query.after, query.before, take),
        (answer) =>
          reachesWatermark(answer, query.after, query.before, take, mark.lastSeq) &&
          (answer.length === 0 || Number(answer[0]!.change_counter ?? 0) >= mark.changeSeq),
      );
    } else {
      await this.conversations.requireMember(viewerId, conversationId);
      rows = await historyRows(this.reads.primary, conversationId, query.after, query.before, take);
    }
    const hasMore = rows.length > limit;
    const page = rows.slice(0, limit);
    // Newest first to take a `before` page, then ascending for the answer.
    if (query.after === undefined) page.reverse();
    return { messages: await this.withAttachments(page.map(toMessage)), hasMore };
  }

  /** Fills the messages' attachments with fresh download URLs: for answers to members only. */
  async withAttachments(messages: Message[]): Promise<Message[]> {
    await this.attachments?.fill(messages);
    return messages;
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

  /**
   * A batch's sends all resolve at once; emitting each message (encoding, publishing, writing to local sockets) before
   * its ack made the last sender of a batch wait for every fan-out before its own. The acks are answered in the
   * microtasks that follow the commit; the fan-outs run together right after (one setImmediate per batch), in commit
   * order, so receivers still get a conversation's messages in seq order.
   */
  private fanOutAfterAcks(stored: StoredSend, repeated: boolean): void {
    if (this.fanOuts.push({ stored, repeated }) > 1) return;
    setImmediate(() => {
      const due = this.fanOuts;
      this.fanOuts = [];
      let failure: unknown;
      for (const f of due) {
        try {
          this.fanOut(f.stored, f.repeated);
        } catch (err) {
          failure ??= err; // the others still go out; the first failure reaches the process handler
        }
      }
      if (failure !== undefined) throw failure;
    });
  }

  private fanOut(stored: StoredSend, repeated: boolean): void {
    this.notifier.toUsers(
      stored.members.map((m) => m.userId),
      "message:new",
      stored.message,
    );
    for (const listener of this.storedListeners) listener(stored.message, stored.members, { repeated });
    // The recipient's reply accepted a message request: both members' conversation objects changed. Best effort: a
    // member who misses it sees the state in the next conversation object it loads (list, sync, get).
    if (stored.acceptedRequest) this.conversations.announceChange(stored.message.conversationId).catch(() => undefined);
  }
}

/** A history row with the conversation's change counter as the same snapshot saw it (null: nothing changed yet). */
type HistoryRow = MessageRow & { change_counter: number | null };

/** Up to `take` rows after `after` (ascending), or else below `before` (descending, newest first). */
function historyRows(
  db: Db,
  conversationId: string,
  after: number | undefined,
  before: number | undefined,
  take: number,
): Promise<HistoryRow[]> {
  const select = `SELECT ${MESSAGE_COLUMNS},
    (SELECT change_seq FROM message_change_counters WHERE conversation_id = $1::uuid) AS change_counter
    FROM messages m`;
  if (after !== undefined) {
    return db.$queryRawUnsafe<HistoryRow[]>(
      `${select} WHERE conversation_id = $1::uuid AND seq > $2 ORDER BY seq ASC LIMIT $3`,
      conversationId,
      after,
      take,
    );
  }
  return db.$queryRawUnsafe<HistoryRow[]>(
    `${select} WHERE conversation_id = $1::uuid AND seq < $2 ORDER BY seq DESC LIMIT $3`,
    conversationId,
    before ?? 2_147_483_647,
    take,
  );
}

/**
 * Whether a page of `historyRows` holds everything up to `lastSeq`, the conversation's last seq read on the primary
 * before it. seq is gapless and commit-ordered, and a replica replays commits in order, so any server's messages of a
 * conversation are 1..n for some n: the page is complete when its highest seq reaches the highest one the primary
 * could have answered (the page's end, or lastSeq). A message committed after lastSeq was read may be in it or not,
 * exactly as if the primary had answered a moment earlier; it reaches the client live.
 */
export function reachesWatermark(
  rows: readonly { seq: number | bigint }[],
  after: number | undefined,
  before: number | undefined,
  take: number,
  lastSeq: number,
): boolean {
  const expectedTop =
    after !== undefined ? Math.min(after + take, lastSeq) : Math.min((before ?? Infinity) - 1, lastSeq);
  if (expectedTop <= (after ?? 0)) return true;
  let top = 0;
  for (const row of rows) top = Math.max(top, Number(row.seq));
  return top >= expectedTop;
}

function countCodePoints(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}
