// The hot path's storage: sends are queued and written in batches (group commit).
//
// Why batches: awaiting one INSERT per message caps a pod far below what Socket.IO can deliver, while PostgreSQL
// takes hundreds of thousands of rows per second in multi-row statements. Each batch is one statement, one round
// trip (WRITE_BATCH_SQL below): it finds retried sends, checks membership, locks the batch's conversation rows in id
// order, allocates the next seqs, inserts the messages, bumps last_seq, moves each sender's read marker, and returns
// the members to fan out to. It commits on its own, so a conversation's row lock is held for that one statement
// only. The lock is what makes `seq` gapless and commit-ordered: nobody else can allocate in that conversation until
// this statement commits.
// A duplicate that races past the statement's idempotency read hits the unique (sender, clientMsgId) index; the
// batch is then retried one send at a time, so each retry finds the stored row and one bad send cannot fail its
// neighbours.
import { randomUUID } from "node:crypto";
import type { Sql } from "../db/client.js";
import { isRetryableConflict, isUniqueViolation, isUnavailableError, notFound, unavailable } from "../errors.js";
import type { Message } from "../protocol/types.js";

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
    private readonly sql: Sql,
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
        const results = await writeBatch(this.sql, requests);
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

function settle(p: Pending, result: BatchResult): void {
  if ("error" in result) p.reject(result.error);
  else p.resolve(result);
}

interface BatchRow {
  /** "i": inserted by this statement, "e": already stored (a retry), "m": a member of a batch conversation. */
  kind: "i" | "e" | "m";
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

// One statement, one round trip per batch (measured: the database round trips, not the SQL, were the largest cost
// of a send in the pod). In order: which sends are already stored (retries), which senders are members, the
// position of each new send among the batch's sends to its conversation, then the lock on the conversation rows in
// id order, the seqs, the inserts and the senders' read markers; last, what the caller needs back: the new rows,
// the stored ones, and the members of every conversation touched (for fan-out and push).
// The membership and idempotency reads see the statement's snapshot, taken before the row locks are granted; a
// duplicate committed in between is caught by the unique index (the writer then retries each send alone).
const WRITE_BATCH_SQL = `
WITH req AS (
  SELECT * FROM unnest($1::int[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::bool[], $7::uuid[])
    AS r(idx, conversation_id, sender_id, client_msg_id, content, system_sender, id)
), existing AS (
  SELECT r.idx, m.id, m.conversation_id, m.seq, m.sender_id, m.client_msg_id, m.content, m.created_at
    FROM req r JOIN messages m ON m.sender_id = r.sender_id AND m.client_msg_id = r.client_msg_id
), numbered AS (
  SELECT r.*, row_number() OVER (PARTITION BY r.conversation_id ORDER BY r.idx)::int AS ord
    FROM req r
   WHERE NOT EXISTS (SELECT 1 FROM existing e WHERE e.idx = r.idx)
     AND EXISTS (SELECT 1 FROM members mb
                  WHERE mb.conversation_id = r.conversation_id AND (r.system_sender OR mb.user_id = r.sender_id))
), locked AS (
  SELECT id, last_seq FROM conversations
   WHERE id IN (SELECT conversation_id FROM numbered) ORDER BY id FOR UPDATE
), bumped AS (
  UPDATE conversations c SET last_seq = l.last_seq + k.n, last_message_at = now()
    FROM locked l JOIN (SELECT conversation_id, count(*)::int AS n FROM numbered GROUP BY 1) k
      ON k.conversation_id = l.id
   WHERE c.id = l.id
   RETURNING c.id, l.last_seq AS base
), inserted AS (
  INSERT INTO messages (id, conversation_id, seq, sender_id, client_msg_id, content)
  SELECT n.id, n.conversation_id, b.base + n.ord, n.sender_id, n.client_msg_id, n.content
    FROM numbered n JOIN bumped b ON b.id = n.conversation_id
  RETURNING id, conversation_id, seq, sender_id, created_at
), sender_reads AS (
  UPDATE members m SET read_seq = GREATEST(m.read_seq, r.seq)
    FROM (SELECT conversation_id, sender_id, max(seq) AS seq FROM inserted GROUP BY 1, 2) r
   WHERE m.conversation_id = r.conversation_id AND m.user_id = r.sender_id
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
 WHERE mb.conversation_id IN (SELECT conversation_id FROM req UNION SELECT conversation_id FROM existing)`;

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
  const rows = await sql<BatchRow>(WRITE_BATCH_SQL, [
    unique,
    unique.map((i) => requests[i]!.conversationId),
    unique.map((i) => requests[i]!.senderId),
    unique.map((i) => requests[i]!.clientMsgId),
    unique.map((i) => requests[i]!.content),
    unique.map((i) => requests[i]!.systemSender === true),
    unique.map((i) => ids[i]!),
  ]);

  const members = new Map<string, { userId: string; muted: boolean }[]>();
  const outcome = new Map<number, Message & { created: boolean }>();
  for (const row of rows) {
    if (row.kind === "m") {
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
        created: false,
      });
    }
  }
  return requests.map((_, i): BatchResult => {
    const first = sameAs[i]!;
    const found = outcome.get(first);
    // Neither stored nor inserted: not a member, or no such conversation.
    if (found === undefined) return { error: notFound() };
    const { created, ...message } = found;
    return { message, created: created && first === i, members: members.get(message.conversationId) ?? [] };
  });
}
