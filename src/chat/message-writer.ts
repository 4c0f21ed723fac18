// The hot path's storage: sends are queued and written in batches (group commit), one transaction per batch.
//
// Why batches: awaiting one INSERT per message caps a pod far below what Socket.IO can deliver, while PostgreSQL
// takes hundreds of thousands of rows per second in multi-row statements. Each batch:
//   1. locks the batch's conversation rows (sorted, so concurrent batches cannot deadlock); the lock is what makes
//      `seq` gapless and commit-ordered: nobody else can allocate in that conversation until this batch commits;
//   2. reads their members (authorisation, and who to fan out to);
//   3. finds sends whose (sender, clientMsgId) is already stored (idempotent retries);
//   4. inserts the new messages with consecutive seqs, bumps last_seq, and moves each sender's read marker.
// A batch that fails as a whole for a per-message reason (a concurrent duplicate in another conversation) is
// retried one message at a time so one bad send cannot fail its neighbours.
import { randomUUID } from "node:crypto";
import type { Db } from "../db/client.js";
import { isUniqueViolation, isUnavailableError, notFound, unavailable } from "../errors.js";
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
  /** Most sends in one transaction. @default 256 */
  maxBatch?: number;
  /** Batches in flight at once (each holds one pooled connection). @default 4 */
  concurrency?: number;
}

type Tx = Parameters<Parameters<Db["$transaction"]>[0]>[0];

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
    this.concurrency = options.concurrency ?? 4;
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
    try {
      const results = await this.db.$transaction(
        (tx) =>
          writeBatch(
            tx,
            batch.map((p) => p.request),
          ),
        {
          maxWait: 10_000,
          timeout: 20_000,
        },
      );
      batch.forEach((p, i) => settle(p, results[i]!));
    } catch (err) {
      if (batch.length > 1 && isUniqueViolation(err)) {
        // Retry alone; each retry now sees the conflicting row and returns it.
        await Promise.all(batch.map((p) => this.commitOne(p)));
        return;
      }
      const failure = isUnavailableError(err) ? unavailable() : err;
      for (const p of batch) p.reject(failure);
    }
  }

  private async commitOne(p: Pending): Promise<void> {
    try {
      const [result] = await this.db.$transaction((tx) => writeBatch(tx, [p.request]));
      settle(p, result!);
    } catch (err) {
      p.reject(isUnavailableError(err) ? unavailable() : err);
    }
  }
}

type BatchResult = StoredSend | { error: unknown };

function settle(p: Pending, result: BatchResult): void {
  if ("error" in result) p.reject(result.error);
  else p.resolve(result);
}

async function writeBatch(tx: Tx, requests: SendRequest[]): Promise<BatchResult[]> {
  const conversationIds = [...new Set(requests.map((r) => r.conversationId))].sort();

  const locked = await tx.$queryRawUnsafe<{ id: string; last_seq: number }[]>(
    `SELECT id::text, last_seq FROM conversations WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`,
    conversationIds,
  );
  const lastSeq = new Map(locked.map((c) => [c.id, Number(c.last_seq)]));

  const memberRows = await tx.$queryRawUnsafe<{ conversation_id: string; user_id: string; muted: boolean }[]>(
    `SELECT conversation_id::text, user_id::text, muted FROM members WHERE conversation_id = ANY($1::uuid[])`,
    conversationIds,
  );
  const members = new Map<string, { userId: string; muted: boolean }[]>();
  for (const m of memberRows) {
    const list = members.get(m.conversation_id) ?? [];
    list.push({ userId: m.user_id, muted: m.muted });
    members.set(m.conversation_id, list);
  }

  const existingRows = await tx.$queryRawUnsafe<MessageRow[]>(
    `SELECT ${MESSAGE_COLUMNS}
       FROM messages m
       JOIN unnest($1::uuid[], $2::text[]) AS k(sender_id, client_msg_id)
         ON m.sender_id = k.sender_id AND m.client_msg_id = k.client_msg_id`,
    requests.map((r) => r.senderId),
    requests.map((r) => r.clientMsgId),
  );
  const stored = new Map(existingRows.map((row) => [`${row.sender_id}\n${row.client_msg_id}`, toMessage(row)]));

  const results: BatchResult[] = [];
  const inserts: {
    id: string;
    conversationId: string;
    seq: number;
    senderId: string;
    clientMsgId: string;
    content: string;
  }[] = [];
  const sendersRead = new Map<string, { conversationId: string; senderId: string; seq: number }>();

  for (const r of requests) {
    const convMembers = members.get(r.conversationId) ?? [];
    const key = `${r.senderId}\n${r.clientMsgId}`;
    const previous = stored.get(key);
    if (previous !== undefined) {
      // A retry: the stored message, whichever conversation it went to, and nothing new to fan out.
      results.push({ message: previous, created: false, members: members.get(previous.conversationId) ?? [] });
      continue;
    }
    if (!lastSeq.has(r.conversationId) || (!r.systemSender && !convMembers.some((m) => m.userId === r.senderId))) {
      results.push({ error: notFound() });
      continue;
    }
    const seq = lastSeq.get(r.conversationId)! + 1;
    lastSeq.set(r.conversationId, seq);
    const row = {
      id: randomUUID(),
      conversationId: r.conversationId,
      seq,
      senderId: r.senderId,
      clientMsgId: r.clientMsgId,
      content: r.content,
    };
    inserts.push(row);
    // Placeholder message; createdAt is filled from the database's clock below.
    const message: Message = { ...row, createdAt: "" };
    stored.set(key, message);
    sendersRead.set(`${r.conversationId}\n${r.senderId}`, {
      conversationId: r.conversationId,
      senderId: r.senderId,
      seq,
    });
    results.push({ message, created: true, members: convMembers });
  }

  if (inserts.length > 0) {
    const created = await tx.$queryRawUnsafe<{ id: string; created_at: Date }[]>(
      `INSERT INTO messages (id, conversation_id, seq, sender_id, client_msg_id, content)
       SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::uuid[], $5::text[], $6::text[])
       RETURNING id::text, created_at`,
      inserts.map((i) => i.id),
      inserts.map((i) => i.conversationId),
      inserts.map((i) => i.seq),
      inserts.map((i) => i.senderId),
      inserts.map((i) => i.clientMsgId),
      inserts.map((i) => i.content),
    );
    const createdAt = new Map(created.map((c) => [c.id, new Date(c.created_at).toISOString()]));
    for (const result of results) {
      if ("message" in result && result.created) result.message.createdAt = createdAt.get(result.message.id)!;
    }

    const touched = [...new Set(inserts.map((i) => i.conversationId))];
    await tx.$executeRawUnsafe(
      `UPDATE conversations c SET last_seq = v.seq, last_message_at = now()
         FROM unnest($1::uuid[], $2::int[]) AS v(id, seq) WHERE c.id = v.id`,
      touched,
      touched.map((id) => lastSeq.get(id)!),
    );

    // Sending a message moves the sender's own read marker to it (the contract).
    const reads = [...sendersRead.values()];
    await tx.$executeRawUnsafe(
      `UPDATE members m SET read_seq = GREATEST(m.read_seq, v.seq)
         FROM unnest($1::uuid[], $2::uuid[], $3::int[]) AS v(conversation_id, user_id, seq)
        WHERE m.conversation_id = v.conversation_id AND m.user_id = v.user_id`,
      reads.map((r) => r.conversationId),
      reads.map((r) => r.senderId),
      reads.map((r) => r.seq),
    );
  }
  return results;
}
