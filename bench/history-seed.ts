// The seed of the history-at-size bench: synthetic but realistically shaped chat data, written by PostgreSQL itself
// (INSERT ... SELECT over generate_series: no row crosses the wire, which beats COPY from a client here).
//
// Shape (for the defaults: 100,000 conversations, 50,000 users, 10M messages at the last size):
// - messages per conversation follow a Zipf law (weight rank^-0.8): the busiest conversation holds ~2% of all messages
//   (~220k at 10M), the quietest ~20; every conversation grows in proportion as the table grows, so a "deep" page
//   of the busiest one is deeper at 10M than at 1M;
// - members: ranks 1-20 are 1,000-member groups, 21-2,000 groups of 50-199, 2,001-30,000 groups of 3-20, the rest
//   direct conversations of 2. User 0 (the "heavy" user) is in the 20 big groups and in every 105th conversation
//   (~970 conversations, just under the per-user cap of 1,000); other users are spread over the rest;
// - messages arrive in time order across conversations (each batch is sorted by created_at before it is written), so a
//   conversation's messages are scattered over the heap as they are in production, not stored side by side;
// - text: 100,000 distinct bodies of 1-40 words (2% of 40-300) over a 20,000-word vocabulary with a Zipf-like word
//   frequency, so the GIN index has a few huge posting lists and many short ones;
// - changes: every 50th message edited (with its message_edits row) and reacted to by up to 3 members, every 97th
//   deleted, every 20th a reply to the one before; change numbers and message_change_counters consistent with them;
// - receipts: each member's read/delivered markers, 80% caught up, 15% up to 200 behind, 5% never read (unread
//   counts in the hundred thousands in the big groups).
import type pg from "pg";

export interface SeedShape {
  conversations: number;
  users: number;
  /** The last (largest) size: each conversation's final message count is planned from it. */
  finalMessages: number;
}

/** Distinct message bodies; a message takes one by a hash of (conversation, seq). */
const TEXTS = 100_000;
const VOCABULARY = 20_000;

/** SQL for a user's id from its index, the same in every statement: md5 of a name, read as a uuid. */
const userUuid = (index: string) => `md5('u' || (${index}))::uuid`;

/** Creates the helper functions and the plan tables (bench_* tables, outside the application's schema). */
export async function preparePlan(client: pg.ClientBase, shape: SeedShape, say: (line: string) => void): Promise<void> {
  const { conversations, users, finalMessages } = shape;
  await client.query(`
    -- Member k of the conversation of rank r, as a user index. User 0 only where the rule puts it (k = 0).
    CREATE OR REPLACE FUNCTION bench_member(r int, k int) RETURNS int LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT CASE WHEN k = 0 AND (r <= 20 OR r % 105 = 7) THEN 0
                  ELSE (((r::bigint * 2654435761) % ${users - 1} + k::bigint * 7919) % ${users - 1})::int + 1 END
    $$;
    CREATE OR REPLACE FUNCTION bench_members(r int) RETURNS int LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT CASE WHEN r <= 20 THEN 1000 WHEN r <= 2000 THEN 50 + r % 150 WHEN r <= 30000 THEN 3 + r % 18 ELSE 2 END
    $$;
    -- Edited (every 50th) or deleted (every 97th) messages up to seq s: the change number of the last of them.
    CREATE OR REPLACE FUNCTION bench_changes(s int) RETURNS int LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT s / 50 + s / 97 - s / 4850
    $$;
    -- A pseudo-random number in [0, 1) from two integers (stable across runs).
    CREATE OR REPLACE FUNCTION bench_hash01(a int, b int) RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT ((((a::bigint * 2654435761) # (b::bigint * 40503 + 12345)) % 1000003 + 1000003) % 1000003) / 1000003.0
    $$;
  `);
  await client.query(`DROP TABLE IF EXISTS bench_plan, bench_texts`);
  await client.query(`
    CREATE TABLE bench_plan AS
    WITH w AS (SELECT r, power(r, -0.8) AS w FROM generate_series(1, ${conversations}) r),
         t AS (SELECT sum(w) AS total FROM w)
    SELECT r AS rank, md5('c' || r)::uuid AS id, bench_members(r) AS members,
           greatest(1, round(${finalMessages} * w / total))::int AS final_messages,
           0 AS seeded
      FROM w, t`);
  await client.query(`ALTER TABLE bench_plan ADD PRIMARY KEY (rank)`);
  // Words made of syllables (readable in plans and results); a body picks them with a Zipf-like skew (u^4).
  await client.query(`
    CREATE TABLE bench_texts AS
    WITH syl AS (SELECT ARRAY['ka','lo','mi','ne','ru','ta','shi','po','de','va','zu','re','bo','fi','gu','ya'] AS s),
         words AS (
           SELECT array_agg(s[1 + i % 16] || s[1 + (i / 16) % 16] || s[1 + (i / 256) % 16]
                            || CASE WHEN i >= 4096 THEN s[1 + (i / 4096) % 16] ELSE '' END ORDER BY i) AS w
             FROM syl, generate_series(0, ${VOCABULARY - 1}) i)
    SELECT t AS id,
           (SELECT string_agg(words.w[1 + floor(${VOCABULARY} * power(random(), 4))::int + 0 * g], ' ' ORDER BY g)
              FROM generate_series(1, CASE WHEN t % 50 = 0 THEN 40 + (t * 7) % 260
                                           ELSE 1 + floor(40 * power(bench_hash01(t, 1), 2))::int END) g
             WHERE g > 0 AND t >= 0) AS content
      FROM words, generate_series(0, ${TEXTS - 1}) t`);
  await client.query(`ALTER TABLE bench_texts ADD PRIMARY KEY (id)`);

  say(`plan: ${conversations} conversations, ${users} users, up to ${finalMessages} messages`);
  await client.query(
    `INSERT INTO users (id, username, display_name, password_hash)
     SELECT ${userUuid("i")}, 'bench' || i, 'Bench user ' || i, NULL FROM generate_series(0, ${users - 1}) i`,
  );
  await client.query(`
    INSERT INTO conversations (id, type, title, direct_key, last_seq, created_at)
    SELECT id, CASE WHEN members = 2 THEN 'direct' ELSE 'group' END::"ConversationType",
           CASE WHEN members = 2 THEN NULL ELSE 'Group ' || rank END,
           CASE WHEN members = 2 THEN 'bench:' || rank END, 0, timestamptz '2025-01-01' + rank * interval '1 second'
      FROM bench_plan`);
  await client.query(`
    INSERT INTO members (conversation_id, user_id, role, joined_at)
    SELECT p.id, ${userUuid("bench_member(p.rank, k)")},
           CASE WHEN k = 0 AND p.members > 2 THEN 'admin' ELSE 'member' END::"MemberRole",
           timestamptz '2025-01-01' + p.rank * interval '1 second' + k * interval '1 millisecond'
      FROM bench_plan p, generate_series(0, p.members - 1) k`);
}

/** Per-conversation message counts at `target` total messages (each conversation in proportion, at least 1). */
const countAt = (target: number, finalMessages: number) =>
  `greatest(1, round(final_messages::numeric * ${target} / ${finalMessages}))::int`;

/**
 * Grows the messages table to about `target` rows: every conversation gets the messages from its seeded count up to
 * its count at `target`, in `batches` time-ordered INSERTs; then markers, counters, reactions and edits follow.
 */
export async function growTo(
  client: pg.ClientBase,
  shape: SeedShape,
  target: number,
  say: (line: string) => void,
): Promise<void> {
  const upto = countAt(target, shape.finalMessages);
  const [{ adding }] = (
    await client.query<{ adding: string }>(`SELECT sum(${upto} - seeded)::bigint AS adding FROM bench_plan`)
  ).rows as [{ adding: string }];
  const batches = Math.max(1, Math.round(Number(adding) / 1_000_000));
  say(`growing by ${Number(adding).toLocaleString("en")} messages in ${batches} batch(es)`);
  // Time: message s of a conversation with n final messages is sent at s/n of a 2-year span; batches take slices of
  // every conversation's range, so each batch is one stretch of time and later batches are later.
  for (let b = 0; b < batches; b++) {
    const started = Date.now();
    const from = `(seeded + floor((${upto} - seeded)::numeric * ${b} / ${batches}))::int + 1`;
    const to = `(seeded + floor((${upto} - seeded)::numeric * ${b + 1} / ${batches}))::int`;
    const result = await client.query(`
      INSERT INTO messages (id, conversation_id, seq, sender_id, client_msg_id, content, created_at, edited_at,
                            deleted_at, reply_to_id, change_seq)
      SELECT md5('m' || p.rank || ':' || s)::uuid, p.id, s,
             ${userUuid("bench_member(p.rank, s % p.members)")}, 'b' || p.rank || '-' || s, t.content, x.at,
             CASE WHEN s % 50 = 0 THEN x.at + interval '1 minute' END,
             CASE WHEN s % 97 = 0 THEN x.at + interval '2 minutes' END,
             CASE WHEN s % 20 = 0 THEN md5('m' || p.rank || ':' || (s - 1))::uuid END,
             CASE WHEN s % 50 = 0 OR s % 97 = 0 THEN bench_changes(s) ELSE 0 END
        FROM bench_plan p
        CROSS JOIN LATERAL generate_series(${from}, ${to}) s
        CROSS JOIN LATERAL (SELECT timestamptz '2025-01-01'
                                   + (s::float8 / p.final_messages) * interval '730 days'
                                   + (p.rank % 1000) * interval '1 millisecond' AS at) x
        JOIN bench_texts t ON t.id = ((p.rank::bigint * 7919 + s::bigint * 104729) % ${TEXTS})::int
       ORDER BY x.at`);
    say(`  batch ${b + 1}/${batches}: ${result.rowCount} rows in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  // Reactions and edit history for the new edited messages (every 50th), then the counters and markers.
  await client.query(`
    INSERT INTO message_reactions (message_id, user_id, emoji, created_at)
    SELECT md5('m' || p.rank || ':' || s)::uuid, ${userUuid("bench_member(p.rank, k)")},
           (ARRAY['👍', '❤️', '😂'])[k + 1], timestamptz '2025-01-01' + (s::float8 / p.final_messages) * interval '730 days'
      FROM bench_plan p
      CROSS JOIN LATERAL generate_series((p.seeded / 50 + 1) * 50, ${upto}, 50) s
      CROSS JOIN LATERAL generate_series(0, least(p.members, 3) - 1) k
     WHERE s % 97 <> 0`);
  await client.query(`
    INSERT INTO message_edits (id, message_id, editor_id, previous_content, edited_at)
    SELECT md5('e' || p.rank || ':' || s)::uuid, md5('m' || p.rank || ':' || s)::uuid,
           ${userUuid("bench_member(p.rank, s % p.members)")}, 'before the edit',
           timestamptz '2025-01-01' + (s::float8 / p.final_messages) * interval '730 days'
      FROM bench_plan p
      CROSS JOIN LATERAL generate_series((p.seeded / 50 + 1) * 50, ${upto}, 50) s`);
  await client.query(`
    INSERT INTO message_change_counters (conversation_id, change_seq)
    SELECT id, bench_changes(${upto}) FROM bench_plan WHERE bench_changes(${upto}) > 0
    ON CONFLICT (conversation_id) DO UPDATE SET change_seq = excluded.change_seq`);
  await client.query(`
    UPDATE conversations c SET last_seq = ${upto.replaceAll("final_messages", "p.final_messages")},
           last_message_at = timestamptz '2025-01-01'
             + (${upto.replaceAll("final_messages", "p.final_messages")}::float8 / p.final_messages) * interval '730 days'
             + (p.rank % 1000) * interval '1 millisecond'
      FROM bench_plan p WHERE p.id = c.id`);
  // Markers: 80% caught up (0-2 behind), 15% up to 200 behind, 5% never read; delivered at most 1 behind the read.
  await client.query(`
    UPDATE members mb SET read_seq = r.read_seq, delivered_seq = greatest(r.read_seq, r.last_seq - r.k % 2)
      FROM (SELECT m.conversation_id, m.user_id, c.last_seq, z.k,
                   CASE WHEN z.h < 0.80 THEN greatest(0, c.last_seq - (z.k % 3))
                        WHEN z.h < 0.95 THEN greatest(0, c.last_seq - (z.k % 200))
                        ELSE 0 END AS read_seq
              FROM members m JOIN conversations c ON c.id = m.conversation_id
              CROSS JOIN LATERAL (
                SELECT bench_hash01(hashtext(m.conversation_id::text), hashtext(m.user_id::text)) AS h,
                       abs(hashtext(m.user_id::text)) AS k) z) r
     WHERE mb.conversation_id = r.conversation_id AND mb.user_id = r.user_id`);
  await client.query(`UPDATE bench_plan SET seeded = ${upto}`);
}
