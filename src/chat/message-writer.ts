// The hot path's storage: sends are queued and written in batches (group commit).
//
// Why batches: awaiting one INSERT per message caps a pod far below what Socket.IO can deliver, while PostgreSQL
// takes hundreds of thousands of rows per second in multi-row statements. Each batch is one statement, one round
// trip (WRITE_BATCH_SQL below): it finds retried sends, checks membership, refuses a sender blocked by the other
// member of a direct conversation (blocks.ts), locks the batch's conversation rows in id order, allocates the next
// seqs, inserts the messages, bumps last_seq (and accepts a pending message request on the recipient's first reply:
// message-requests.ts), moves each sender's read and delivered markers, and returns the members to fan out to. It
// commits on its own, so a conversation's row lock is held for that one statement only. The lock is what makes `seq`
// gapless and commit-ordered: nobody else can allocate in that conversation until this statement commits. A batch
// that fails for any reason but the database being unavailable is split in halves and each half retried
// (bisection), down to single sends: a duplicate that raced past the statement's idempotency read (the unique
// (sender, clientMsgId) index) then finds its stored row, and a send PostgreSQL refuses for its own data (a NUL byte,
// SQLSTATE 22021) fails alone instead of failing every send batched with it.
//
// Admission control: past capacity a queue only turns into latency for everyone. The queue is bounded (maxQueue) and
// has a deadline (maxWaitMs): a send that would wait longer is refused at once with `unavailable` and a jittered
// `retryAfterMs`, and a queued send whose deadline passed before its batch started is failed without being written.
// Refused sends were never written, so the client's retry with the same clientMsgId is safe. Past capacity the event
// loop is a queue too (frames wait their turn before any of this runs), and so is the fan-out (publishes waiting for
// Redis): while either runs late (`backlogs`), sends are refused the same way. `admission()` lets the socket route
// refuse before parsing the payload, so a refusal costs almost nothing and the sends admitted stay fast.
//
// Pipelining: up to `concurrency` batches are in flight, the next one starting while the previous commits, but a
// conversation is in one batch in flight at most. A send for a conversation whose batch is in flight stays queued
// (in arrival order) until that batch is done, so seqs still follow arrival order per conversation, and concurrent
// batches never wait on each other's row locks.
import { randomUUID } from "node:crypto";
import type { Sql } from "../db/client.js";
import {
  forbidden,
  isRetryableConflict,
  isUniqueViolation,
  isUnavailableError,
  notFound,
  unavailable,
} from "../errors.js";
import type { Message } from "@chat-gateway/protocol";
import { unchangedFields } from "./message-rows.js";

export interface SendRequest {
  conversationId: string;
  senderId: string;
  clientMsgId: string;
  content: string;
  /** The message answered; the caller has checked it is in the same conversation (messages.ts). */
  replyToId?: string | undefined;
  /** A service's system user, trusted by the caller: posts without being a member. */
  systemSender?: boolean;
  /**
   * Uploads already claimed for this send (src/attachments claims and checks them before the write), linked to the
   * message in the batch's statement.
   */
  attachmentIds?: string[];
}

export interface StoredSend {
  message: Message;
  /** False when the clientMsgId was already stored, or repeated earlier in the same batch. */
  created: boolean;
  /**
   * The clientMsgId was stored before this batch (a retry): its first fan-out may have been lost with the pod that
   * committed it, so it is fanned out again. False for a repeat within the same batch, whose first is fanned out.
   */
  alreadyStored: boolean;
  /** Members of the conversation at commit time, for fan-out and push. */
  members: { userId: string; muted: boolean }[];
  /** This send was the recipient's first reply to a message request: it accepted the request (message-requests.ts). */
  acceptedRequest?: boolean;
}

interface Pending {
  request: SendRequest;
  resolve: (result: StoredSend) => void;
  reject: (err: unknown) => void;
  /** performance.now() when queued. */
  queuedAt: number;
}

/**
 * Why a send was refused for capacity: the queue was full, it would have waited too long, it did wait too long, or a
 * queue outside the writer was behind (a Backlog's reason).
 */
export type RefusalReason = "queue_full" | "wait" | "expired" | Backlog["reason"];

/**
 * A queue outside the writer that sends pass through, how far behind it is, and the limit past which sends are
 * refused (0: never): the event loop (limits/loop-lag.ts) and the fan-out's publishes to Redis
 * (realtime/publish-backlog.ts).
 */
export interface Backlog {
  reason: "loop_lag" | "publish_lag";
  gauge: { readonly lagMs: number };
  maxMs: number;
}

export interface MessageWriterOptions {
  /** Most sends in one statement. @default 256 */
  maxBatch?: number;
  /**
   * Batches in flight at once, over disjoint conversations: the next batch starts while the previous one commits
   * instead of waiting for it (bench/RESULTS.md). The gateway runs 2 on PostgreSQL (WRITER_CONCURRENCY); one
   * connection (PGlite) has nothing to overlap. @default 1
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
  /** Sends are refused while any of these is past its limit. @default none */
  backlogs?: Backlog[];
}

/** One batch's figures, for /metrics: how many sends, how long its sends waited, how long its statement took. */
export interface BatchReport {
  size: number;
  /** Each send's wait in the queue before its batch started, ms. */
  waitsMs: number[];
  /** From the statement being sent to its rows being back in this process (includes any event-loop delay), ms. */
  statementMs: number;
}

/** What /readyz and /metrics read. */
export interface WriterHealth {
  /** Age of the oldest queued send, ms (0 when the queue is empty). */
  oldestQueuedMs: number;
  /** Age of the oldest batch in flight, ms (0 when none). */
  inFlightMs: number;
  /** A batch has been in flight, or a send queued, longer than stuckAfterMs. */
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
  private readonly backlogs: Backlog[];
  /** Conversations with a batch in flight: their queued sends wait, so a conversation is in one batch at a time. */
  private readonly busy = new Set<string>();
  /** Recent batch duration (exponentially weighted), to judge how long a queue of a given length takes to write. */
  private batchMs = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly refusedListeners: ((reason: RefusalReason) => void)[] = [];
  private readonly batchListeners: ((report: BatchReport) => void)[] = [];

  constructor(
    private readonly sql: Sql,
    options: MessageWriterOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 256;
    this.concurrency = options.concurrency ?? 1;
    this.maxQueue = options.maxQueue ?? 2000;
    this.maxWaitMs = options.maxWaitMs ?? 500;
    this.stuckAfterMs = options.stuckAfterMs ?? 5000;
    this.retryAfter = options.retryAfterMs ?? { min: 200, max: 1000 };
    this.random = options.random ?? Math.random;
    this.backlogs = (options.backlogs ?? []).filter((b) => b.maxMs > 0);
  }

  /**
   * `unavailable` (counted as a refusal) when a send arriving now would be refused for capacity, else undefined. The
   * socket route asks this before anything else, so a refused send is not even parsed.
   */
  admission(): Error | undefined {
    const refusal = this.admit();
    return refusal === undefined ? undefined : this.refuse(refusal);
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

  /** Told about every batch written (for metrics). */
  onBatch(listener: (report: BatchReport) => void): void {
    this.batchListeners.push(listener);
  }

  health(): WriterHealth {
    const now = performance.now();
    const oldestQueuedMs = this.queue.length > 0 ? now - this.queue[0]!.queuedAt : 0;
    let inFlightMs = 0;
    for (const b of this.batchesInFlight) inFlightMs = Math.max(inFlightMs, now - b.startedAt);
    return {
      oldestQueuedMs,
      inFlightMs,
      // Not the queueing deadline: past capacity sends wait about that long by design (and are refused beyond it),
      // which is overload, handled by refusing; failing readiness then would only push the load onto other pods.
      stuck: Math.max(inFlightMs, oldestQueuedMs) > this.stuckAfterMs,
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
    // A send admitted now would wait behind a queue that is already late (the loop, or the fan-out: then the pod
    // commits faster than it can publish).
    for (const { reason, gauge, maxMs } of this.backlogs) if (gauge.lagMs > maxMs) return reason;
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
    return unavailable("the server is busy, retry later", { retryAfterMs: this.retryAfterMs() });
  }

  /** Jittered, so refused clients do not all come back at the same moment. */
  private retryAfterMs(): number {
    const { min, max } = this.retryAfter;
    return Math.round(min + this.random() * (max - min));
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
      const batch = this.takeBatch();
      if (batch.length === 0) break; // every queued send is for a conversation in flight: the end of a batch pumps
      const conversations = new Set(batch.map((p) => p.request.conversationId));
      for (const id of conversations) this.busy.add(id);
      this.inFlight++;
      const started = { startedAt: now };
      this.batchesInFlight.add(started);
      void this.commit(batch).finally(() => {
        this.batchesInFlight.delete(started);
        for (const id of conversations) this.busy.delete(id);
        const elapsed = performance.now() - now;
        this.batchMs = this.batchMs === 0 ? elapsed : 0.8 * this.batchMs + 0.2 * elapsed;
        this.inFlight--;
        this.pump();
      });
    }
    if (this.queue.length === 0 && this.inFlight === 0) for (const done of this.idleWaiters.splice(0)) done();
  }

  /**
   * Up to maxBatch queued sends, in arrival order, skipping those whose conversation has a batch in flight (they stay
   * queued in order, so a conversation's sends are written in the order they came).
   */
  private takeBatch(): Pending[] {
    if (this.busy.size === 0) return this.queue.splice(0, this.maxBatch);
    const batch: Pending[] = [];
    const rest: Pending[] = [];
    for (const p of this.queue) {
      if (batch.length < this.maxBatch && !this.busy.has(p.request.conversationId)) batch.push(p);
      else rest.push(p);
    }
    this.queue = rest;
    return batch;
  }

  private async commit(batch: Pending[]): Promise<void> {
    const requests = batch.map((p) => p.request);
    for (let attempt = 1; ; attempt++) {
      try {
        const started = performance.now();
        const results = await writeBatch(this.sql, requests);
        this.report(batch, started);
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
          const failure = unavailable(undefined, { retryAfterMs: this.retryAfterMs() });
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

  private report(batch: Pending[], started: number): void {
    if (this.batchListeners.length === 0) return;
    const report: BatchReport = {
      size: batch.length,
      waitsMs: batch.map((p) => started - p.queuedAt),
      statementMs: performance.now() - started,
    };
    for (const listener of this.batchListeners) listener(report);
  }
}

type BatchResult = StoredSend | { error: unknown };

function settle(p: Pending, result: BatchResult): void {
  if ("error" in result) p.reject(result.error);
  else p.resolve(result);
}

interface BatchRow {
  /**
   * "i": inserted by this statement, "e": already stored (a retry), "m": a member of a batch conversation,
   * "b": refused (the sender is blocked by the other member of this direct conversation), "a": a conversation whose
   * message request this statement accepted.
   */
  kind: "i" | "e" | "m" | "b" | "a";
  idx: number | null;
  id: string | null;
  conversation_id: string;
  seq: number | null;
  sender_id: string | null;
  client_msg_id: string | null;
  content: string | null;
  created_at: Date | null;
  muted: boolean | null;
}

// One statement, one round trip per batch (measured: the database round trips, not the SQL, were the largest cost of
// a send in the pod). In order: which sends are already stored (retries), which senders are members, the position of
// each new send among the batch's sends to its conversation, then the lock on the conversation rows in id order, the
// seqs, the inserts and the senders' read and delivered markers (their own message is both; their rows locked in key
// order, like every member row lock); last, what the caller
// needs back: the new rows, the stored ones, and the members of every conversation touched (for fan-out and push).
// The membership and idempotency reads see the statement's snapshot, taken before the row locks are granted; a
// duplicate committed in between is caught by the unique index (the writer then bisects the batch).
export const WRITE_BATCH_SQL = `
WITH req AS (
  SELECT * FROM unnest($1::int[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::bool[], $7::uuid[], $8::uuid[])
    AS r(idx, conversation_id, sender_id, client_msg_id, content, system_sender, id, reply_to_id)
), existing AS (
  -- One probe of the unique (sender_id, client_msg_id) index per send, written as a lateral LIMIT 1 so that it stays
  -- an index probe whatever the planner believes of the table's size: as a join, a plan made while the messages table was
  -- small hashed a sequential scan of the whole table, and the writer keeps its plan (4 ms at 17,000 rows).
  SELECT r.idx, m.id, m.conversation_id, m.seq, m.sender_id, m.client_msg_id, m.content, m.created_at
    FROM req r CROSS JOIN LATERAL (
      SELECT * FROM messages m WHERE m.sender_id = r.sender_id AND m.client_msg_id = r.client_msg_id LIMIT 1) m
), blocked AS (
  -- A sender blocked by the other member of a direct conversation (blocks.ts): one probe of the blocks index by
  -- sender, which finds nothing for almost every send.
  SELECT DISTINCT r.idx FROM req r
    JOIN blocks bl ON bl.blocked_id = r.sender_id
    JOIN members mb ON mb.conversation_id = r.conversation_id AND mb.user_id = bl.blocker_id
    JOIN conversations c ON c.id = r.conversation_id AND c.type = 'direct'
   WHERE NOT r.system_sender AND NOT EXISTS (SELECT 1 FROM existing e WHERE e.idx = r.idx)
), numbered AS (
  SELECT r.*, row_number() OVER (PARTITION BY r.conversation_id ORDER BY r.idx)::int AS ord
    FROM req r
   WHERE NOT EXISTS (SELECT 1 FROM existing e WHERE e.idx = r.idx)
     AND NOT EXISTS (SELECT 1 FROM blocked b WHERE b.idx = r.idx)
     AND EXISTS (SELECT 1 FROM members mb
                  WHERE mb.conversation_id = r.conversation_id AND (r.system_sender OR mb.user_id = r.sender_id))
), locked AS (
  SELECT id, last_seq, requested_by, accepted_at FROM conversations
   WHERE id IN (SELECT conversation_id FROM numbered) ORDER BY id FOR UPDATE
), bumped AS (
  -- The recipient's first message into a pending message request accepts it (message-requests.ts), under the lock.
  UPDATE conversations c SET last_seq = l.last_seq + k.n, last_message_at = now(),
         accepted_at = CASE WHEN l.accepted_at IS NULL AND COALESCE(l.requested_by <> ANY(k.senders), false)
                            THEN now() ELSE c.accepted_at END
    FROM locked l JOIN (SELECT conversation_id, count(*)::int AS n,
                               array_agg(sender_id) FILTER (WHERE NOT system_sender) AS senders
                          FROM numbered GROUP BY 1) k
      ON k.conversation_id = l.id
   WHERE c.id = l.id
   RETURNING c.id, l.last_seq AS base, (l.accepted_at IS NULL AND c.accepted_at IS NOT NULL) AS accepted
), inserted AS (
  INSERT INTO messages (id, conversation_id, seq, sender_id, client_msg_id, content, reply_to_id)
  SELECT n.id, n.conversation_id, b.base + n.ord, n.sender_id, n.client_msg_id, n.content, n.reply_to_id
    FROM numbered n JOIN bumped b ON b.id = n.conversation_id
  RETURNING id, conversation_id, seq, sender_id, created_at
), sender_rows AS (
  -- The senders' member rows, locked in key order as the marker writer locks member rows (marker-writer.ts): taken
  -- in whatever order the update met them, a batch with two senders and a marker batch could each hold the row the
  -- other waits for, and PostgreSQL only breaks that after deadlock_timeout (1 s), stalling both batches.
  SELECT m.conversation_id, m.user_id, r.seq
    FROM members m
    JOIN (SELECT conversation_id, sender_id, max(seq) AS seq FROM inserted GROUP BY 1, 2) r
      ON m.conversation_id = r.conversation_id AND m.user_id = r.sender_id
   ORDER BY m.conversation_id, m.user_id
     FOR UPDATE OF m
), sender_reads AS (
  UPDATE members m SET read_seq = GREATEST(m.read_seq, r.seq), delivered_seq = GREATEST(m.delivered_seq, r.seq)
    FROM sender_rows r
   WHERE m.conversation_id = r.conversation_id AND m.user_id = r.user_id
), linked AS (
  -- The uploads each new message claimed (none for a send without attachments: an empty unnest, no lookup).
  UPDATE attachments a SET message_id = n.id
    FROM unnest($9::uuid[], $10::int[]) AS x(attachment_id, idx) JOIN numbered n ON n.idx = x.idx
   WHERE a.id = x.attachment_id AND a.uploader_id = n.sender_id AND a.claimed_by = n.client_msg_id
     AND a.message_id IS NULL AND EXISTS (SELECT 1 FROM inserted i WHERE i.id = n.id)
)
SELECT 'i' AS kind, n.idx, i.id::text, i.conversation_id::text, i.seq, NULL::text AS sender_id,
       NULL::text AS client_msg_id, NULL::text AS content, i.created_at, NULL::bool AS muted
  FROM inserted i JOIN numbered n ON n.id = i.id
UNION ALL
SELECT 'e', e.idx, e.id::text, e.conversation_id::text, e.seq, e.sender_id::text, e.client_msg_id, e.content,
       e.created_at, NULL
  FROM existing e
UNION ALL
SELECT 'm', NULL, mb.user_id::text, mb.conversation_id::text, NULL, NULL, NULL, NULL, NULL, mb.muted
  FROM members mb
 WHERE mb.conversation_id IN (SELECT conversation_id FROM req UNION SELECT conversation_id FROM existing)
UNION ALL
SELECT 'b', b.idx, NULL, r.conversation_id::text, NULL, NULL, NULL, NULL, NULL, NULL
  FROM blocked b JOIN req r ON r.idx = b.idx
UNION ALL
SELECT 'a', NULL, NULL, bm.id::text, NULL, NULL, NULL, NULL, NULL, NULL FROM bumped bm WHERE bm.accepted`;

async function writeBatch(sql: Sql, requests: SendRequest[]): Promise<BatchResult[]> {
  // A send repeated within the batch is written once; the repeats get the first one's message, marked as not new.
  const firstOfKey = new Map<string, number>();
  const unique: number[] = [];
  const sameAs = requests.map((r, i) => {
    const key = `${r.senderId}\n${r.clientMsgId}`;
    const first = firstOfKey.get(key);
    if (first !== undefined) return first;
    firstOfKey.set(key, i);
    unique.push(i);
    return i;
  });
  const ids = requests.map(() => randomUUID());
  const attachments: { id: string; idx: number }[] = [];
  for (const i of unique) for (const id of requests[i]!.attachmentIds ?? []) attachments.push({ id, idx: i });
  const rows = await sql<BatchRow>(
    WRITE_BATCH_SQL,
    [
      unique,
      unique.map((i) => requests[i]!.conversationId),
      unique.map((i) => requests[i]!.senderId),
      unique.map((i) => requests[i]!.clientMsgId),
      unique.map((i) => requests[i]!.content),
      unique.map((i) => requests[i]!.systemSender === true),
      unique.map((i) => ids[i]!),
      unique.map((i) => requests[i]!.replyToId ?? null),
      attachments.map((a) => a.id),
      attachments.map((a) => a.idx),
    ],
    { prepare: "write-message-batch" },
  );

  const members = new Map<string, { userId: string; muted: boolean }[]>();
  const outcome = new Map<number, Message & { created: boolean }>();
  const blocked = new Set<number>();
  const accepted = new Set<string>();
  for (const row of rows) {
    if (row.kind === "b") blocked.add(row.idx!);
    else if (row.kind === "a") accepted.add(row.conversation_id);
    else if (row.kind === "m") {
      let list = members.get(row.conversation_id);
      if (list === undefined) members.set(row.conversation_id, (list = []));
      list.push({ userId: row.id!, muted: row.muted === true });
    } else if (row.kind === "i") {
      const r = requests[row.idx!]!;
      outcome.set(row.idx!, {
        id: row.id!,
        conversationId: row.conversation_id,
        seq: Number(row.seq),
        senderId: r.senderId,
        clientMsgId: r.clientMsgId,
        content: r.content,
        createdAt: new Date(row.created_at!).toISOString(),
        ...unchangedFields(),
        created: true,
      });
    } else {
      // A retry: the stored message, whichever conversation it went to, and nothing new to fan out.
      outcome.set(row.idx!, {
        id: row.id!,
        conversationId: row.conversation_id,
        seq: Number(row.seq),
        senderId: row.sender_id!,
        clientMsgId: row.client_msg_id!,
        content: row.content!,
        createdAt: new Date(row.created_at!).toISOString(),
        // The stored message may have changed since; messages.ts reloads a retry's message in full.
        ...unchangedFields(),
        created: false,
      });
    }
  }
  return requests.map((_, i): BatchResult => {
    const first = sameAs[i]!;
    const found = outcome.get(first);
    if (found === undefined) {
      // Refused: blocked by the other member of a direct conversation (checked for members only, so a non-member
      // still learns nothing). Otherwise neither stored nor inserted: not a member, or no such conversation.
      const { conversationId, senderId } = requests[first]!;
      const refused = blocked.has(first) && members.get(conversationId)?.some((m) => m.userId === senderId);
      return { error: refused ? forbidden("you cannot message this user") : notFound() };
    }
    const { created, ...message } = found;
    const result: StoredSend = {
      message,
      created: created && first === i,
      alreadyStored: !created && first === i,
      members: members.get(message.conversationId) ?? [],
    };
    // Told once, with the first send of the batch into that conversation.
    if (result.created && accepted.delete(message.conversationId)) result.acceptedRequest = true;
    return result;
  });
}
