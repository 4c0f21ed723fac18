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
// A duplicate that races past step 1 hits the unique (sender, clientMsgId) index; the batch is then retried one send
// at a time, so each retry finds the stored row and one bad send cannot fail its neighbours.
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
}

export interface MessageWriterOptions {
  /** Most sends in one statement. @default 256 */
  maxBatch?: number;
  /**
   * Batches in flight at once. One is best measured (bench/RESULTS.md): while a batch is in flight the next one
   * grows, and several small concurrent batches from every pod only queue on the same conversation rows.
   * @default 1
   */
  concurrency?: number;
}

export class MessageWriter {
  private queue: Pending[] = [];
  private inFlight = 0;
  private readonly maxBatch: number;
  private readonly concurrency: number;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly db: Db,
    options: MessageWriterOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 256;
    this.concurrency = options.concurrency ?? 1;
  }

  /** Resolves once the message is committed (or was already stored). */
  write(request: SendRequest): Promise<StoredSend> {
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      this.pump();
    });
  }

  /** Resolves when every queued send has been committed or failed: used by the graceful drain. */
  async idle(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  get pending(): number {
    return this.queue.length + this.inFlight;
  }

  private pump(): void {
    // The first send of an idle writer goes out at once; sends that arrive while batches are in flight queue up
    // and leave together, so batches grow with load and latency stays one transaction when idle.
    while (this.queue.length > 0 && this.inFlight < this.concurrency) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.inFlight++;
      void this.commit(batch).finally(() => {
        this.inFlight--;
        if (this.queue.length > 0) this.pump();
        else if (this.inFlight === 0) for (const done of this.idleWaiters.splice(0)) done();
      });
    }
  }

  private async commit(batch: Pending[]): Promise<void> {
    const requests = batch.map((p) => p.request);
    for (let attempt = 1; ; attempt++) {
      try {
        const results = await writeBatch(this.db, requests);
        batch.forEach((p, i) => settle(p, results[i]!));
        return;
      } catch (err) {
        if (isUniqueViolation(err)) {
          // Another batch stored one of these sends since our read: re-run each alone, which finds the stored row.
          if (batch.length > 1) {
            await Promise.all(batch.map((p) => this.commit([p])));
            return;
          }
          if (attempt < 3) continue;
        }
        // Two batches can still meet in the lock queue in opposite orders via the unique index; PostgreSQL breaks
        // the tie by failing one, which is safe to run again.
        if (isRetryableConflict(err) && attempt < 3) continue;
        const failure = isUnavailableError(err) ? unavailable() : err;
        for (const p of batch) p.reject(failure);
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
