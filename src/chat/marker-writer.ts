// Read and delivery markers, written in batches (group commit), like sends in message-writer.ts.
//
// Why batches: in a group whose devices ack every message, each message brings two markers per member. One UPDATE
// (plus a membership query) per marker is 2·G round trips per message; a batch is one statement for all of them.
// The first marker of an idle writer goes out at once; markers that arrive while a batch is in flight gather and
// leave together, so batches grow with load and latency stays one statement when idle.
//
// Per batch:
//   1. duplicates collapse: one row per (conversation, user) carrying the highest read and delivered seq asked for;
//   2. one statement locks those member rows in key order (so batches of several pods never deadlock each other),
//      moves each marker forward only (`col < LEAST(seq, last_seq)`, clamped to the conversation's last message) and
//      returns which markers moved, with the values they moved to, and for small conversations their members (who
//      hears of it: the announcer then needs no query of its own), and the requester of a pending message request
//      the member received, who must not hear of it (message-requests.ts);
//   3. the same statement names the requesters who are not members at all: they answer `not_found`, exactly like an
//      unknown conversation; a stale marker from a member answers ok. (A second query for this ran in almost every
//      batch, since most markers of a busy conversation move nothing: another device of the user got there first.)
// The moved markers go to the `onMoved` listeners (the receipt announcer) once per batch, after commit.
import type { Sql } from "../db/client.js";
import { AppError, isRetryableConflict, isUnavailableError, notFound, unavailable } from "../errors.js";

export type MarkerKind = "read" | "delivered";

export interface MarkerRequest {
  conversationId: string;
  userId: string;
  kind: MarkerKind;
  seq: number;
  /** The socket that sent it, so the reader's other devices can be told without echoing it back. */
  originSocketId?: string | undefined;
}

/** One member's markers that moved in a batch: the new value of each one that moved. */
export interface MovedMarkers {
  conversationId: string;
  userId: string;
  read?: number;
  delivered?: number;
  /** The socket of the (last) read request of this member in the batch. */
  readOriginSocketId?: string;
  /** Every member of the conversation, when it has at most `smallAudienceMax` members. */
  audience?: string[];
  /** The requester of a pending message request this member received: must not hear of these markers. */
  withheldFrom?: string;
}

export type MovedListener = (moved: MovedMarkers[]) => void;

interface Pending {
  request: MarkerRequest;
  queuedAt: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface MarkerWriterOptions {
  /** Most markers in one statement. @default 2000 */
  maxBatch?: number;
  /** Markers waiting beyond this are refused at once with `unavailable` (the database is not keeping up). @default 10000 */
  maxPending?: number;
  /**
   * A marker is refused at once while the oldest queued one has waited longer than this, in ms: past capacity,
   * markers give way to sends (the SDK re-sends them after `retryAfterMs`; only the highest one matters). @default 1000
   */
  maxWaitMs?: number;
  /** Suggested retry delay for a refused marker, in ms. @default 1000 */
  retryAfterMs?: number;
  /** Conversations of at most this many members come back with their member ids (`audience`). @default 0 */
  smallAudienceMax?: number;
}

export class MarkerWriter {
  private queue: Pending[] = [];
  private inFlight = 0;
  private readonly listeners: MovedListener[] = [];
  private idleWaiters: (() => void)[] = [];
  private readonly maxBatch: number;
  private readonly maxPending: number;
  private readonly retryAfterMs: number;
  private readonly maxWaitMs: number;
  private readonly smallAudienceMax: number;

  constructor(
    private readonly sql: Sql,
    options: MarkerWriterOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 2000;
    this.maxPending = options.maxPending ?? 10_000;
    this.retryAfterMs = options.retryAfterMs ?? 1000;
    this.maxWaitMs = options.maxWaitMs ?? 1000;
    this.smallAudienceMax = options.smallAudienceMax ?? 0;
  }

  onMoved(listener: MovedListener): void {
    this.listeners.push(listener);
  }

  /** Resolves once the batch holding this marker has committed; `not_found` for a non-member. */
  move(request: MarkerRequest): Promise<void> {
    const oldest = this.queue[0];
    if (this.queue.length >= this.maxPending || (oldest && performance.now() - oldest.queuedAt > this.maxWaitMs)) {
      return Promise.reject(
        new AppError("unavailable", "too many read and delivery markers waiting, retry later", {
          retryAfterMs: this.retryAfterMs,
        }),
      );
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ request, queuedAt: performance.now(), resolve, reject });
      this.pump();
    });
  }

  /** Resolves when every queued marker has been written or failed: used by the graceful drain. */
  async idle(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  get pending(): number {
    return this.queue.length + this.inFlight;
  }

  private pump(): void {
    // One batch in flight: while it is, the next one grows (see message-writer.ts for the measurement).
    if (this.queue.length === 0 || this.inFlight > 0) return;
    const batch = this.queue.splice(0, this.maxBatch);
    this.inFlight++;
    void this.commit(batch).finally(() => {
      this.inFlight--;
      if (this.queue.length > 0) this.pump();
      else for (const done of this.idleWaiters.splice(0)) done();
    });
  }

  private async commit(batch: Pending[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      let result: Awaited<ReturnType<typeof writeBatch>>;
      try {
        result = await writeBatch(
          this.sql,
          batch.map((p) => p.request),
          this.smallAudienceMax,
        );
      } catch (err) {
        // Member rows are locked in key order here and in the message writer, so two batches do not deadlock; a
        // conflict PostgreSQL still reports (a serialization failure) is safe to run again.
        if (isRetryableConflict(err) && attempt < 3) continue;
        const failure = isUnavailableError(err) ? unavailable() : err;
        for (const p of batch) p.reject(failure);
        return;
      }
      for (const p of batch) {
        if (result.notMembers.has(keyOf(p.request))) p.reject(notFound());
        else p.resolve();
      }
      if (result.moved.length > 0) for (const listener of this.listeners) listener(result.moved);
      return;
    }
  }
}

const keyOf = (r: { conversationId: string; userId: string }) => `${r.conversationId}\n${r.userId}`;

interface Wanted {
  conversationId: string;
  userId: string;
  read: number;
  delivered: number;
  readOriginSocketId?: string | undefined;
}

async function writeBatch(
  sql: Sql,
  requests: MarkerRequest[],
  smallAudienceMax: number,
): Promise<{ moved: MovedMarkers[]; notMembers: Set<string> }> {
  // One row per member: an UPDATE ... FROM with two source rows for one target row would apply only one of them.
  const wanted = new Map<string, Wanted>();
  for (const r of requests) {
    const key = keyOf(r);
    const w = wanted.get(key) ?? { conversationId: r.conversationId, userId: r.userId, read: 0, delivered: 0 };
    if (r.kind === "read") {
      w.read = Math.max(w.read, r.seq);
      if (r.originSocketId !== undefined) w.readOriginSocketId = r.originSocketId;
    } else w.delivered = Math.max(w.delivered, r.seq);
    wanted.set(key, w);
  }
  const rows = [...wanted.values()];
  // `prev` locks the rows in key order and, under READ COMMITTED, reads their latest committed values, so
  // comparing them with the new ones says exactly which marker this statement moved.
  const movedRows = await sql<{
    conversation_id: string;
    user_id: string;
    member: boolean;
    read_seq: number | null;
    delivered_seq: number | null;
    audience: string[] | null;
    withheld_from: string | null;
  }>(
    `WITH wanted AS (
       SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::int[]) AS w(conversation_id, user_id, read_seq, delivered_seq)
     ), prev AS (
       SELECT m.conversation_id, m.user_id, m.read_seq, m.delivered_seq,
              LEAST(w.read_seq, c.last_seq) AS read_to, LEAST(w.delivered_seq, c.last_seq) AS delivered_to
         FROM members m
         JOIN wanted w ON w.conversation_id = m.conversation_id AND w.user_id = m.user_id
         JOIN conversations c ON c.id = m.conversation_id
        WHERE m.read_seq < LEAST(w.read_seq, c.last_seq) OR m.delivered_seq < LEAST(w.delivered_seq, c.last_seq)
        ORDER BY m.conversation_id, m.user_id
          FOR UPDATE OF m
     ), moved AS (
       UPDATE members m
          SET read_seq = GREATEST(m.read_seq, p.read_to), delivered_seq = GREATEST(m.delivered_seq, p.delivered_to)
         FROM prev p
        WHERE m.conversation_id = p.conversation_id AND m.user_id = p.user_id
        RETURNING m.conversation_id, m.user_id, m.read_seq, m.delivered_seq,
                  p.read_seq AS old_read, p.delivered_seq AS old_delivered
     ), audiences AS (
       SELECT conversation_id, array_agg(user_id::text) AS user_ids
         FROM members WHERE conversation_id IN (SELECT conversation_id FROM prev)
        GROUP BY conversation_id HAVING count(*) <= $5
     )
     -- One row per marker that moved and per requester who is not a member (the snapshot's membership: the same
     -- answer the separate query after the batch used to give).
     SELECT w.conversation_id::text, w.user_id::text, mb.user_id IS NOT NULL AS member,
            CASE WHEN mv.read_seq > mv.old_read THEN mv.read_seq END AS read_seq,
            CASE WHEN mv.delivered_seq > mv.old_delivered THEN mv.delivered_seq END AS delivered_seq,
            a.user_ids AS audience,
            CASE WHEN c.accepted_at IS NULL AND c.requested_by <> mv.user_id THEN c.requested_by::text END
              AS withheld_from
       FROM wanted w
       LEFT JOIN members mb ON mb.conversation_id = w.conversation_id AND mb.user_id = w.user_id
       LEFT JOIN moved mv ON mv.conversation_id = w.conversation_id AND mv.user_id = w.user_id
       LEFT JOIN audiences a ON a.conversation_id = mv.conversation_id
       LEFT JOIN conversations c ON c.id = mv.conversation_id
      WHERE mv.user_id IS NOT NULL OR mb.user_id IS NULL`,
    [
      rows.map((w) => w.conversationId),
      rows.map((w) => w.userId),
      rows.map((w) => w.read),
      rows.map((w) => w.delivered),
      smallAudienceMax,
    ],
    { prepare: "move-markers" },
  );

  const moved: MovedMarkers[] = [];
  const notMembers = new Set<string>();
  for (const row of movedRows) {
    const key = keyOf({ conversationId: row.conversation_id, userId: row.user_id });
    if (!row.member) notMembers.add(key);
    if (row.read_seq === null && row.delivered_seq === null) continue;
    const entry: MovedMarkers = { conversationId: row.conversation_id, userId: row.user_id };
    if (row.audience !== null) entry.audience = row.audience;
    if (row.withheld_from !== null) entry.withheldFrom = row.withheld_from;
    if (row.read_seq !== null) {
      entry.read = Number(row.read_seq);
      const origin = wanted.get(key)?.readOriginSocketId;
      if (origin !== undefined) entry.readOriginSocketId = origin;
    }
    if (row.delivered_seq !== null) entry.delivered = Number(row.delivered_seq);
    moved.push(entry);
  }
  return { moved, notMembers };
}
