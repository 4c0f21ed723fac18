-- Message search (src/chat/search.ts): a full-text GIN index over every message that is not deleted.
--
-- Tokens come from PostgreSQL's `simple` configuration: lower-cased words with no stemming and no stop words, so the
-- same rule serves every language written with spaces. Scripts written without spaces between words (Han, Kana,
-- Thai, Lao, Khmer, Myanmar) and Hangul (whose words carry their particles attached) are indexed one character per
-- token: chat_search_text puts spaces around each of their characters, and a query for "会议" becomes the phrase
-- '会' <-> '议', which finds it inside any run of text. One GIN index, no extension, the same on PGlite.

-- Added by the edit/delete feature too; a deleted message keeps its row (content "") and leaves the index.
ALTER TABLE "messages" ADD COLUMN IF NOT EXISTS "deleted_at" TIMESTAMPTZ(3);

-- The text as it is tokenized for search. Changing the character list means REINDEX INDEX messages_search_idx.
-- SQL-language and IMMUTABLE, so the planner inlines it and the query's expression matches the index's.
CREATE OR REPLACE FUNCTION chat_search_text(body text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$
    SELECT regexp_replace(
      body,
      '([\u0e00-\u0eff\u1000-\u109f\u1100-\u11ff\u1780-\u17ff\u2e80-\u2fdf\u3000-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\uff65-\uffdc\U00020000-\U0003ffff])',
      ' \1 ',
      'g')
  $$;

CREATE INDEX "messages_search_idx" ON "messages"
  USING GIN (to_tsvector('simple'::regconfig, chat_search_text("content")))
  WHERE "deleted_at" IS NULL;
