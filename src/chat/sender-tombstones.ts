// Every message of one sender becomes a tombstone through the change path (account deletion): each tombstone takes
// the next number of its conversation's change counter, as message-changes.ts does for one message, so `sync` with
// change cursors hands them out and converges; after the commit the other members' devices get `message:updated`.
//
// Bounded work: one statement per batch of a conversation's messages (each message still its own change number),
// and after the commit the live updates are read back in pages; a conversation with more tombstones than
// LIVE_UPDATES_MAX tells its members `sync:required` once instead of a flood of events.
//
// Locks: a batch locks its message rows, then the conversation's counter row (the order message-changes.ts uses, so no
// deadlock), and keeps the counter locked until the caller's transaction commits, so change numbers become visible in
// increasing order.
import type { Sql } from "../db/client.js";
import { MESSAGE_COLUMNS, type MessageRow, toMessage } from "./message-rows.js";
import type { Notifier } from "./ports.js";

/** The change numbers one conversation's tombstones took, `from` to `to` inclusive. */
export interface TombstonedRange {
  conversationId: string;
  from: number;
  to: number;
}

/** Messages tombstoned per statement, so no statement of a prolific account runs into statement_timeout. */
const BATCH = 2000;
/** Most `message:updated` events per conversation; above, its members get `sync:required` instead. */
export const LIVE_UPDATES_MAX = 1000;
/** Tombstones read back per query for the live updates. */
const READ_PAGE = 200;

// $1 sender, $2 conversation, $3 batch size. A tombstoned row has client_msg_id = id, which marks it done (kept as the
// account deletion had it). Numbers follow seq within the batch.
const TOMBSTONE_BATCH = `
  WITH batch AS (
    SELECT id, seq FROM messages
     WHERE sender_id = $1::uuid AND conversation_id = $2::uuid AND client_msg_id <> id::text
     ORDER BY seq LIMIT $3 FOR NO KEY UPDATE),
  total AS (SELECT count(*)::int AS n FROM batch),
  counter AS (
    INSERT INTO message_change_counters (conversation_id, change_seq) SELECT $2::uuid, n FROM total WHERE n > 0
    ON CONFLICT (conversation_id) DO UPDATE SET change_seq = message_change_counters.change_seq + EXCLUDED.change_seq
    RETURNING change_seq),
  numbered AS (SELECT id, row_number() OVER (ORDER BY seq) AS rn FROM batch),
  reactions AS (DELETE FROM message_reactions WHERE message_id IN (SELECT id FROM batch)),
  updated AS (
    UPDATE messages m SET content = '', client_msg_id = m.id::text, deleted_at = COALESCE(m.deleted_at, now()),
           change_seq = (SELECT change_seq FROM counter) - (SELECT n FROM total) + nb.rn
      FROM numbered nb WHERE m.id = nb.id
    RETURNING m.change_seq)
  SELECT (SELECT n FROM total) AS n, (SELECT min(change_seq) FROM updated)::float8 AS first,
         (SELECT max(change_seq) FROM updated)::float8 AS last`;

/** Tombstones every message of the sender, in the caller's transaction. Answers what to announce after commit. */
export async function tombstoneMessagesOf(sql: Sql, senderId: string): Promise<TombstonedRange[]> {
  const conversations = await sql<{ conversation_id: string }>(
    `SELECT DISTINCT conversation_id::text FROM messages WHERE sender_id = $1::uuid AND client_msg_id <> id::text`,
    [senderId],
  );
  const ranges: TombstonedRange[] = [];
  for (const { conversation_id: conversationId } of conversations) {
    let range: TombstonedRange | undefined;
    for (;;) {
      const [row] = await sql<{ n: number; first: number | null; last: number | null }>(TOMBSTONE_BATCH, [
        senderId,
        conversationId,
        BATCH,
      ]);
      const n = Number(row!.n);
      if (n > 0) {
        range ??= { conversationId, from: Number(row!.first), to: Number(row!.last) };
        range.to = Number(row!.last);
      }
      if (n < BATCH) break;
    }
    if (range !== undefined) ranges.push(range);
  }
  return ranges;
}

/** After the commit: `message:updated` with each tombstone to every member (or `sync:required` past the cap). */
export async function announceTombstones(sql: Sql, notifier: Notifier, ranges: TombstonedRange[]): Promise<void> {
  for (const range of ranges) {
    const [members] = await sql<{ ids: string[] | null }>(
      `SELECT array_agg(user_id::text) AS ids FROM members WHERE conversation_id = $1::uuid`,
      [range.conversationId],
    );
    const memberIds = members?.ids ?? [];
    if (memberIds.length === 0) continue;
    if (range.to - range.from + 1 > LIVE_UPDATES_MAX) {
      notifier.toUsersTogether(memberIds, "sync:required");
      continue;
    }
    for (let after = range.from - 1; ;) {
      const rows = await sql<MessageRow>(
        `SELECT ${MESSAGE_COLUMNS} FROM messages m
          WHERE m.conversation_id = $1::uuid AND m.change_seq > $2 AND m.change_seq <= $3
          ORDER BY m.change_seq LIMIT ${READ_PAGE}`,
        [range.conversationId, after, range.to],
      );
      for (const row of rows) notifier.toUsersTogether(memberIds, "message:updated", toMessage(row));
      if (rows.length < READ_PAGE) break;
      after = Number(rows[rows.length - 1]!.change_seq);
    }
  }
}
