-- UPLOAD_MAX_PENDING (src/attachments/attachments.ts): a user's uploads that no message carries yet, counted at each
-- new upload. Partial: sent attachments, the vast majority, are not in it. On a large existing table, build it by hand
-- with CREATE INDEX CONCURRENTLY (same name) before deploying: the migration then finds it and does nothing.
CREATE INDEX IF NOT EXISTS "attachments_uploader_id_pending_idx" ON "attachments"("uploader_id", "created_at") WHERE "message_id" IS NULL;
