// The hot path's storage: sends are queued and written in batches (group commit).
//
// Why batches: awaiting one INSERT per message caps a pod far below what Socket.IO can deliver, while PostgreSQL
// takes hundreds of thousands of rows per second in multi-row statements. Each batch is two round trips:
//   1. a read, without locks: the members of the batch's conversations (authorisation, and who to fan out to) and
//      the sends whose (sender, clientMsgId) is already stored (idempotent retries);
//   2. one statement that locks the conversation rows in id order, allocates the next seqs, inserts the messages,
//      bumps last_seq and moves each sender's read marker. It commits on its own, so a conversation's row lock is
//      held for that one statement only. The lock is what makes `seq` gapless and commit-ordered: nobody else can
//      allocate in that conversation until this statement commits.
// A batch that fails for any reason but the database being unavailable is split in halves and each half retried
// (bisection), down to single sends: a duplicate that raced past step 1 (the unique (sender, clientMsgId) index) then
// finds its stored row, and a send PostgreSQL refuses for its own data (a NUL byte, SQLSTATE 22021) fails alone
// instead of failing every send batched with it.
//
// Admission control: past capacity a queue only turns into latency for everyone. The queue is bounded (maxQueue) and
// has a deadline (maxWaitMs): a send that would wait longer is refused at once with `unavailable` and a jittered
// `retryAfterMs`, and a queued send whose deadline passed before its batch started is failed without being written.
// Refused sends were never written, so the client's retry with the same clientMsgId is safe.
import { randomUUID } from "node:crypto";
import type { Db } from "../db/client.js";
import { isRetryableConflict, isUniqueViolation, isUnavailableError, notFound, unavailable } from "../errors.js";
import type { Message } from "../protocol/types.js";
import { MESSAGE_COLUMNS, type MessageRow, toMessage } from "./message-rows.js";

export interface SendRequest {
  conversationId: string;
  senderId: string;
  clientMsgId: string;
  content: string;
  /** A service's system user, trusted by the caller: posts without being a member. */
  systemSender?: boolean;
}

export interface StoredSend {
  message: Message;
  /** False when the clientMsgId was already stored: nothing new to fan out. */
  created: boolean;
  /** Members of the conversation at commit time, for fan-out and push. */
  members: { userId: string; muted: boolean }[];
}

interface Pending {
  request: SendRequest;
  resolve: (result: StoredSend) => void;
  reject: (err: unknown) => void;
  /** performance.now() when queued. */
  queuedAt: number;
}

/** Why a send was refused for capacity: the queue was full, it would have waited too long, or it did wait too long. */
export type RefusalReason = "queue_full" | "wait" | "expired";

export interface MessageWriterOptions {
  /** Most sends in one statement. @default 256 */
  maxBatch?: number;
  /**
   * Batches in flight at once. One is best measured (bench/RESULTS.md): while a batch is in flight the next one
   * grows, and several small concurrent batches from every pod only queue on the same conversation rows.
   * @default 1
   */
  concurrency?: number;
  /** Most sends queued (not yet in a batch); more are refused. @default 2000 */
  maxQueue?: number;
  /** Longest a send may wait in the queue before its batch starts, in ms. @default 500 */
  maxWaitMs?: number;
  /** A batch in flight longer than this, in ms, makes the writer report itself stuck (readiness). @default 5000 */
  stuckAfterMs?: number;
  /** The client's wait after a refusal: a random value in this range, in ms, so refused clients spread out. */
  retryAfterMs?: { min: number; max: number };
  random?: () => number;
}

/** What /readyz and /metrics read. */
export interface WriterHealth {
  /** Age of the oldest queued send, ms (0 when the queue is empty). */
  oldestQueuedMs: number;
  /** Age of the oldest batch in flight, ms (0 when none). */
  inFlightMs: number;
  /** A batch has been in flight longer than stuckAfterMs, or a queued send has waited past its deadline. */
  stuck: boolean;
}

export class MessageWriter {
  private queue: Pending[] = [];
  private inFlight = 0;
  /** When each batch in flight started (performance.now()). */
  private readonly batchesInFlight = new Set<{ startedAt: number }>();
  private readonly maxBatch: number;
  private readonly concurrency: number;
  private readonly maxQueue: number;
  private readonly maxWaitMs: number;
  private readonly stuckAfterMs: number;
  private readonly retryAfter: { min: number; max: number };
  private readonly random: () => number;
  /** Recent batch duration (exponentially weighted), to judge how long a queue of a given length takes to write. */
  private batchMs = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly refusedListeners: ((reason: RefusalReason) => void)[] = [];

  constructor(
    private readonly db: Db,
    options: MessageWriterOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 256;
    this.concurrency = options.concurrency ?? 1;
    this.maxQueue = options.maxQueue ?? 2000;
    this.maxWaitMs = options.maxWaitMs ?? 500;
    this.stuckAfterMs = options.stuckAfterMs ?? 5000;
    this.retryAfter = options.retryAfterMs ?? { min: 200, max: 1000 };
    this.random = options.random ?? Math.random;
  }

  /** Resolves once the message is committed (or was already stored); rejects `unavailable` when over capacity. */
  write(request: SendRequest): Promise<StoredSend> {
    const refusal = this.admit();
    if (refusal !== undefined) return Promise.reject(this.refuse(refusal));
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject, queuedAt: performance.now() });
      this.pump();
    });
  }

  /** Told about every send refused for capacity (for metrics). */
  onRefused(listener: (reason: RefusalReason) => void): void {
    this.refusedListeners.push(listener);
  }

  health(): WriterHealth {
    const now = performance.now();
    const oldestQueuedMs = this.queue.length > 0 ? now - this.queue[0]!.queuedAt : 0;
    let inFlightMs = 0;
    for (const b of this.batchesInFlight) inFlightMs = Math.max(inFlightMs, now - b.startedAt);
    return {
      oldestQueuedMs,
      inFlightMs,
      stuck: inFlightMs > this.stuckAfterMs || oldestQueuedMs > this.maxWaitMs,
    };
  }

  /** Resolves when every queued send has been committed or failed: used by the graceful drain. */
  async idle(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  get pending(): number {
    return this.queue.length + this.inFlight;
  }

  /** Why a new send cannot be admitted now, or undefined. O(1): it runs for every send. */
  private admit(): RefusalReason | undefined {
    if (this.queue.length === 0) return undefined;
    // The queue is already behind: its oldest send has waited past the deadline, so a new one would too.
    if (performance.now() - this.queue[0]!.queuedAt > this.maxWaitMs) return "wait";
    if (this.queue.length >= this.maxQueue) return "queue_full";
    // The sends ahead would take longer than the deadline to write at the recent pace (full batches, one after
    // another per concurrency slot).
    const batchesAhead = Math.floor(this.queue.length / this.maxBatch) / this.concurrency;
    if (batchesAhead * this.batchMs > this.maxWaitMs) return "wait";
    return undefined;
  }

  private refuse(reason: RefusalReason): Error {
    for (const listener of this.refusedListeners) listener(reason);
    const { min, max } = this.retryAfter;
    const retryAfterMs = Math.round(min + this.random() * (max - min));
    return unavailable("the server is busy, retry later", { retryAfterMs });
  }

  private pump(): void {
    // The first send of an idle writer goes out at once; sends that arrive while batches are in flight queue up
    // and leave together, so batches grow with load and latency stays one transaction when idle.
    while (this.queue.length > 0 && this.inFlight < this.concurrency) {
      // Sends that waited past their deadline are failed unwritten: their clients have been kept waiting long
      // enough, and writing them would only make the sends behind them late too. The queue is in arrival order,
      // so they are at its head.
      const now = performance.now();
      while (this.queue.length > 0 && now - this.queue[0]!.queuedAt > this.maxWaitMs) {
        this.queue.shift()!.reject(this.refuse("expired"));
      }
      if (this.queue.length === 0) break;
      const batch = this.queue.splice(0, this.maxBatch);
      this.inFlight++;
      const started = { startedAt: now };
      this.batchesInFlight.add(started);
      void this.commit(batch).finally(() => {
        this.batchesInFlight.delete(started);
        const elapsed = performance.now() - now;
        this.batchMs = this.batchMs === 0 ? elapsed : 0.8 * this.batchMs + 0.2 * elapsed;
        this.inFlight--;
        this.pump();
      });
    }
    if (this.queue.length === 0 && this.inFlight === 0) for (const done of this.idleWaiters.splice(0)) done();
  }

  private async commit(batch: Pending[]): Promise<void> {
    const requests = batch.map((p) => p.request);
    for (let attempt = 1; ; attempt++) {
      try {
        const results = await writeBatch(this.db, requests);
        batch.forEach((p, i) => settle(p, results[i]!));
        return;
      } catch (err) {
        // Two batches can still meet in the lock queue in opposite orders via the unique index; PostgreSQL breaks
        // the tie by failing one, which is safe to run again. (Checked first: the adapter's kind for it,
        // TransactionWriteConflict, also counts as unavailable once retries are spent.)
        if (isRetryableConflict(err) && attempt < 3) continue;
        if (isUnavailableError(err)) {
          // The database is down or timed out: splitting the batch would only hit it again, and it is nobody's send's
          // fault. Every send answers `unavailable`; clients retry with the same clientMsgId.
          const failure = unavailable();
          for (const p of batch) p.reject(failure);
          return;
        }
        if (batch.length > 1) {
          // Any other failure may be one send's own (its data, or a duplicate that raced past our read): bisect, so
          // that send fails alone and the others commit. Halves run one after the other, keeping arrival order.
          const half = Math.ceil(batch.length / 2);
          await this.commit(batch.slice(0, half));
          await this.commit(batch.slice(half));
          return;
        }
        // A single duplicate: the retry's read finds the row another batch stored since ours.
        if (isUniqueViolation(err) && attempt < 3) continue;
        batch[0]!.reject(err);
        return;
      }
    }
  }
}

type BatchResult = StoredSend | { error: unknown };
type Decision = BatchResult | { sameAs: number };

function settle(p: Pending, result: BatchResult): void {
  if ("error" in result) p.reject(result.error);
  else p.resolve(result);
}

async function writeBatch(db: Db, requests: SendRequest[]): Promise<BatchResult[]> {
  const conversationIds = [...new Set(requests.map((r) => r.conversationId))].sort();
  const [memberRows, existingRows] = await Promise.all([
    db.$queryRawUnsafe<{ conversation_id: string; user_id: string; muted: boolean }[]>(
      `SELECT conversation_id::text, user_id::text, muted FROM members WHERE conversation_id = ANY($1::uuid[])`,
      conversationIds,
    ),
    db.$queryRawUnsafe<MessageRow[]>(
      `SELECT ${MESSAGE_COLUMNS}
         FROM messages m
         JOIN unnest($1::uuid[], $2::text[]) AS k(sender_id, client_msg_id)
           ON m.sender_id = k.sender_id AND m.client_msg_id = k.client_msg_id`,
      requests.map((r) => r.senderId),
      requests.map((r) => r.clientMsgId),
    ),
  ]);
  const members = new Map<string, { userId: string; muted: boolean }[]>();
  for (const m of memberRows) {
    const list = members.get(m.conversation_id) ?? [];
    list.push({ userId: m.user_id, muted: m.muted });
    members.set(m.conversation_id, list);
  }
  const stored = new Map(existingRows.map((row) => [`${row.sender_id}\n${row.client_msg_id}`, toMessage(row)]));

  // Decide each send; new ones get their place (1, 2, ...) among this batch's sends to their conversation.
  const results: Decision[] = [];
  const inserts: { id: string; conversationId: string; ord: number; request: SendRequest; index: number }[] = [];
  const pendingByKey = new Map<string, number>();
  const ordinals = new Map<string, number>();
  for (const r of requests) {
    const key = `${r.senderId}\n${r.clientMsgId}`;
    const previous = stored.get(key);
    if (previous !== undefined) {
      // A retry: the stored message, whichever conversation it went to, and nothing new to fan out.
      results.push({ message: previous, created: false, members: members.get(previous.conversationId) ?? [] });
      continue;
    }
    if (pendingByKey.has(key)) {
      results.push({ sameAs: pendingByKey.get(key)! });
      continue;
    }
    const convMembers = members.get(r.conversationId) ?? [];
    if (!r.systemSender ? !convMembers.some((m) => m.userId === r.senderId) : convMembers.length === 0) {
      results.push({ error: notFound() });
      continue;
    }
    const ord = (ordinals.get(r.conversationId) ?? 0) + 1;
    ordinals.set(r.conversationId, ord);
    pendingByKey.set(key, results.length);
    inserts.push({ id: randomUUID(), conversationId: r.conversationId, ord, request: r, index: results.length });
    results.push({ error: notFound() }); // replaced below once the row is committed
  }

  if (inserts.length > 0) {
    // Sending a message moves the sender's own read marker to it (the contract), in the same statement.
    const committed = await db.$queryRawUnsafe<{ id: string; seq: number; created_at: Date }[]>(
      `WITH locked AS (
         SELECT id, last_seq FROM conversations WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE
       ), counts AS (
         SELECT conversation_id, count(*)::int AS n FROM unnest($2::uuid[]) AS t(conversation_id) GROUP BY 1
       ), bumped AS (
         UPDATE conversations c SET last_seq = l.last_seq + k.n, last_message_at = now()
           FROM locked l JOIN counts k ON k.conversation_id = l.id
          WHERE c.id = l.id
          RETURNING c.id, l.last_seq AS base
       ), inserted AS (
         INSERT INTO messages (id, conversation_id, seq, sender_id, client_msg_id, content)
         SELECT i.id, i.conversation_id, b.base + i.ord, i.sender_id, i.client_msg_id, i.content
           FROM unnest($3::uuid[], $2::uuid[], $4::int[], $5::uuid[], $6::text[], $7::text[])
                AS i(id, conversation_id, ord, sender_id, client_msg_id, content)
           JOIN bumped b ON b.id = i.conversation_id
         RETURNING id, conversation_id, seq, sender_id, created_at
       ), sender_reads AS (
         UPDATE members m SET read_seq = GREATEST(m.read_seq, r.seq)
           FROM (SELECT conversation_id, sender_id, max(seq) AS seq FROM inserted GROUP BY 1, 2) r
          WHERE m.conversation_id = r.conversation_id AND m.user_id = r.sender_id
       )
       SELECT id::text, seq, created_at FROM inserted`,
      [...new Set(inserts.map((i) => i.conversationId))].sort(),
      inserts.map((i) => i.conversationId),
      inserts.map((i) => i.id),
      inserts.map((i) => i.ord),
      inserts.map((i) => i.request.senderId),
      inserts.map((i) => i.request.clientMsgId),
      inserts.map((i) => i.request.content),
    );
    const byId = new Map(committed.map((row) => [row.id, row]));
    for (const i of inserts) {
      const row = byId.get(i.id);
      // No row: the conversation disappeared between the read and the write.
      if (row === undefined) continue;
      const message: Message = {
        id: i.id,
        conversationId: i.conversationId,
        seq: Number(row.seq),
        senderId: i.request.senderId,
        clientMsgId: i.request.clientMsgId,
        content: i.request.content,
        createdAt: new Date(row.created_at).toISOString(),
      };
      results[i.index] = { message, created: true, members: members.get(i.conversationId) ?? [] };
    }
  }
  // A send repeated within the batch gets the first one's message, marked as not new.
  return results.map((r): BatchResult => {
    if (!("sameAs" in r)) return r;
    const first = results[r.sameAs] as BatchResult;
    return "message" in first ? { ...first, created: false } : first;
  });
}
