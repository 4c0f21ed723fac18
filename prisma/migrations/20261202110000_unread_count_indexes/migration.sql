-- Unread counts without reading the unread messages (src/chat/conversation-views.ts, UNREAD_SQL): lastSeq minus the
-- read marker, less the tombstones after it and the member's own live messages after it. Each of those is counted on
-- an index that holds only such rows, so a member 200,000 messages behind costs a few index pages, not 200,000 rows.
-- Measured with bench/history-at-size.ts (bench/RESULTS.md). On a large existing table, build these by hand with
-- CREATE INDEX CONCURRENTLY (same names) before deploying: the migration then finds them and does nothing.

-- The member's own messages after the marker (rare: sending moves the sender's marker; a rejoin resets it).
CREATE INDEX IF NOT EXISTS "messages_conversation_id_sender_id_seq_idx" ON "messages"("conversation_id", "sender_id", "seq");

-- Tombstones only: deletions are few, and queries about live messages cannot pick it by mistake.
CREATE INDEX IF NOT EXISTS "messages_conversation_id_deleted_seq_idx" ON "messages"("conversation_id", "seq") WHERE "deleted_at" IS NOT NULL;
