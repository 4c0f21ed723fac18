-- Messages that change: edits, deletions (tombstones), reactions and replies, ordered per conversation by a change
-- counter kept apart from seq (seq stays the gapless position of a message).

-- AlterTable
ALTER TABLE "messages" ADD COLUMN "edited_at" TIMESTAMPTZ(3),
ADD COLUMN "deleted_at" TIMESTAMPTZ(3),
ADD COLUMN "reply_to_id" UUID,
ADD COLUMN "change_seq" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "message_change_counters" (
    "conversation_id" UUID NOT NULL,
    "change_seq" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "message_change_counters_pkey" PRIMARY KEY ("conversation_id")
);

-- CreateTable
CREATE TABLE "message_edits" (
    "id" UUID NOT NULL,
    "message_id" UUID NOT NULL,
    "editor_id" UUID NOT NULL,
    "previous_content" TEXT NOT NULL,
    "edited_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "message_edits_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "message_reactions" (
    "message_id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "emoji" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "message_reactions_pkey" PRIMARY KEY ("message_id","user_id","emoji")
);

-- CreateIndex
-- Partial: only changed messages are in it (most never are), and no query about seq can pick it by mistake (an index
-- led by conversation_id alone looked as good to the planner as (conversation_id, seq) for unread counts).
CREATE INDEX "messages_conversation_id_change_seq_idx" ON "messages"("conversation_id", "change_seq") WHERE "change_seq" > 0;

-- CreateIndex
CREATE INDEX "message_edits_message_id_idx" ON "message_edits"("message_id");

-- AddForeignKey
ALTER TABLE "messages" ADD CONSTRAINT "messages_reply_to_id_fkey" FOREIGN KEY ("reply_to_id") REFERENCES "messages"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "message_change_counters" ADD CONSTRAINT "message_change_counters_conversation_id_fkey" FOREIGN KEY ("conversation_id") REFERENCES "conversations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "message_edits" ADD CONSTRAINT "message_edits_message_id_fkey" FOREIGN KEY ("message_id") REFERENCES "messages"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "message_reactions" ADD CONSTRAINT "message_reactions_message_id_fkey" FOREIGN KEY ("message_id") REFERENCES "messages"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- One reaction change in one round trip. The message row is locked first; every statement after it takes a fresh
-- snapshot (READ COMMITTED), so it sees what the previous holder of the lock committed: the cap of distinct emoji
-- is exact, and a storm of reactions on one message holds the lock for microseconds each, never across a client
-- round trip. Change numbers are taken under the counter row's lock, held until commit, so they commit in order.
-- p_select reads the message afterwards (the gateway's own select list, $1: the message id), still under the lock:
-- the answer and the fan-out are exactly the state this change made, with its own change number.
CREATE FUNCTION "react_to_message"(p_message UUID, p_conversation UUID, p_user UUID, p_emoji TEXT, p_on BOOLEAN,
                                   p_max_kinds INTEGER, p_select TEXT)
RETURNS TABLE (r_outcome TEXT, r_change_seq INTEGER, r_message JSON)
LANGUAGE plpgsql AS $$
DECLARE
  v_deleted TIMESTAMPTZ;
  v_seq INTEGER;
BEGIN
  SELECT m.deleted_at INTO v_deleted FROM messages m
   WHERE m.id = p_message AND m.conversation_id = p_conversation
     AND EXISTS (SELECT 1 FROM members mb WHERE mb.conversation_id = p_conversation AND mb.user_id = p_user)
   FOR NO KEY UPDATE OF m;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'not_found'::TEXT, NULL::INTEGER, NULL::JSON;
    RETURN;
  END IF;
  IF v_deleted IS NOT NULL THEN
    RETURN QUERY SELECT 'deleted'::TEXT, NULL::INTEGER, NULL::JSON;
    RETURN;
  END IF;
  IF p_on THEN
    IF NOT EXISTS (SELECT 1 FROM message_reactions r WHERE r.message_id = p_message AND r.emoji = p_emoji)
       AND (SELECT count(DISTINCT r.emoji) FROM message_reactions r WHERE r.message_id = p_message) >= p_max_kinds THEN
      RETURN QUERY SELECT 'capped'::TEXT, NULL::INTEGER, NULL::JSON;
      RETURN;
    END IF;
    INSERT INTO message_reactions AS r (message_id, user_id, emoji) VALUES (p_message, p_user, p_emoji)
      ON CONFLICT DO NOTHING;
  ELSE
    DELETE FROM message_reactions r WHERE r.message_id = p_message AND r.user_id = p_user AND r.emoji = p_emoji;
  END IF;
  IF NOT FOUND THEN
    RETURN QUERY EXECUTE 'SELECT ''unchanged''::TEXT, NULL::INTEGER, row_to_json(x) FROM (' || p_select || ') x'
      USING p_message;
    RETURN;
  END IF;
  INSERT INTO message_change_counters AS k (conversation_id, change_seq) VALUES (p_conversation, 1)
    ON CONFLICT (conversation_id) DO UPDATE SET change_seq = k.change_seq + 1
    RETURNING k.change_seq INTO v_seq;
  UPDATE messages m SET change_seq = v_seq WHERE m.id = p_message;
  RETURN QUERY EXECUTE 'SELECT ''changed''::TEXT, $2, row_to_json(x) FROM (' || p_select || ') x'
    USING p_message, v_seq;
END
$$;
