-- Message search at size (src/chat/search.ts; bench/RESULTS.md, "search at size"). Two changes:
--
-- 1. The tokens are stored: search_vector is a generated column with the same immutable expression the GIN index was
--    built on, so every write of `content` (send, edit, tombstone, account deletion) keeps it current by itself, a
--    recheck of a lossy bitmap reads the stored vector instead of running chat_search_text's regexp again, and ANALYZE
--    keeps statistics of the words (most common elements), so the planner knows a common word from a rare one.
-- 2. B-trees on (created_at, id) and (conversation_id, created_at, id) of the messages not deleted: for a common word,
--    search walks the newest messages (of the table, or of each of the caller's conversations) backwards and stops
--    once it has a page of matches, instead of collecting every match and sorting them.
--
-- Adding a stored generated column rewrites the table and tokenizes every row once (minutes at 10M rows, under an
-- ACCESS EXCLUSIVE lock). On a large existing table, plan a maintenance window; the indexes can be built by hand with
-- CREATE INDEX CONCURRENTLY (same names) after the column exists, and the migration then finds them.

ALTER TABLE "messages" ADD COLUMN IF NOT EXISTS "search_vector" tsvector
  GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, chat_search_text("content"))) STORED;

-- The former expression index; the new one indexes the stored column (same rows: the messages not deleted).
DROP INDEX IF EXISTS "messages_search_idx";
CREATE INDEX IF NOT EXISTS "messages_search_vector_idx" ON "messages" USING GIN ("search_vector")
  WHERE "deleted_at" IS NULL;

CREATE INDEX IF NOT EXISTS "messages_created_at_id_idx" ON "messages" ("created_at", "id") WHERE "deleted_at" IS NULL;

-- And per conversation, for a caller in a few conversations (however large): each walked newest-first.
CREATE INDEX IF NOT EXISTS "messages_conversation_id_created_at_id_idx" ON "messages" ("conversation_id", "created_at", "id")
  WHERE "deleted_at" IS NULL;
