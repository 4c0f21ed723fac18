// sync reads no more rows than it returns: the overall limit is applied in SQL, and the answer stays a gapless prefix
// per conversation with `hasMore` right. Conversations per user and group creation per minute are capped.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { api, connectDevice, registerUser, request } from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";

const GROUPS = 20;
const messagesIn = (i: number) => 7 + 3 * i; // 7, 10, ... 64: 710 in all

describe("sync limits and conversation caps", () => {
  let cluster: Cluster;
  let db: pg.Client;
  before(async () => {
    cluster = await startGateways(1, {
      adapter: "memory",
      env: {
        RATE_LIMITS: "on",
        RATE_LIMIT_LOGIN_PER_MIN: "100000",
        RATE_LIMIT_HTTP_PER_MIN: "100000",
        RATE_LIMIT_GROUPS_PER_MIN: "5",
        MAX_CONVERSATIONS_PER_USER: "22",
      },
    });
    db = new pg.Client({ connectionString: cluster.databaseUrl });
    await db.connect();
  });
  after(async () => {
    await db?.end();
    await cluster.cleanup();
  });

  /** Puts `user` in GROUPS groups holding messagesIn(i) messages each, straight into the database; the user sent
   * them, so its read marker is at the end (as sending moves it) and unread counts read no rows. */
  async function fillGroups(userId: string): Promise<Map<string, number>> {
    const { rows } = await db.query<{ id: string; n: number }>(
      `WITH c AS (
         INSERT INTO conversations (id, type, title, last_seq, last_message_at)
         SELECT gen_random_uuid(), 'group', 'g' || i, 7 + 3 * i, now() FROM generate_series(0, $2::int - 1) i
         RETURNING id, last_seq),
       mb AS (
         INSERT INTO members (conversation_id, user_id, role, read_seq, delivered_seq)
         SELECT id, $1::uuid, 'admin', last_seq, last_seq FROM c),
       m AS (
         INSERT INTO messages (id, conversation_id, seq, sender_id, client_msg_id, content)
         SELECT gen_random_uuid(), c.id, s, $1::uuid, c.id || ':' || s, 'm' || s
           FROM c CROSS JOIN LATERAL generate_series(1, c.last_seq) s)
       SELECT id::text, last_seq AS n FROM c`,
      [userId, GROUPS],
    );
    await db.query("ANALYZE messages");
    return new Map(rows.map((r) => [r.id, r.n]));
  }

  /** Message rows fetched through an index so far (sync's lateral reads by conversation and seq; the conversation
   * views may scan the small test table instead, which says nothing about sync). */
  async function messageRowsRead(): Promise<number> {
    const { rows } = await db.query<{ n: string }>(
      `SELECT coalesce(idx_tup_fetch, 0)::text AS n FROM pg_stat_user_tables WHERE relname = 'messages'`,
    );
    return Number(rows[0]?.n ?? 0);
  }

  test("a limited sync reads about as many rows as it returns, in gapless prefixes, and converges", async () => {
    const url = cluster.urls[0]!;
    const user = await registerUser(url);
    const counts = await fillGroups(user.user.id);
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    assert.equal(
      total,
      Array.from({ length: GROUPS }, (_, i) => messagesIn(i)).reduce((a, b) => a + b, 0),
    );
    const device = await connectDevice(url, user.accessToken);

    // Statistics reach pg_stat_user_tables a little after each statement; let earlier ones settle first.
    await new Promise((r) => setTimeout(r, 1500));
    const readBefore = await messageRowsRead();
    const first = await request(device, "sync", { cursors: {}, limit: 50 });
    assert.equal(first.ok, true);
    assert.equal(first.messages.length, 50, "exactly the limit");
    assert.equal(first.hasMore, true);
    assert.equal(first.conversations.length, GROUPS, "every conversation the client did not list");

    // The answer is the greedy prefix in conversation id order: whole conversations, then the start of one.
    const ordered = [...counts.keys()].sort();
    const expected: [string, number][] = [];
    let left = 50;
    for (const id of ordered) {
      for (let s = 1; s <= counts.get(id)! && left > 0; s++, left--) expected.push([id, s]);
    }
    assert.deepEqual(
      first.messages.map((m) => [m.conversationId, m.seq]),
      expected,
    );

    // Before, each conversation's lateral read up to `limit` rows (about 650 here); now at most the 50 returned,
    // plus the last message of each conversation for the conversation views.
    let readAfter = readBefore;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && readAfter - readBefore < 50) {
      await new Promise((r) => setTimeout(r, 250));
      readAfter = await messageRowsRead();
    }
    // A backend reports at most once a second when idle, the rest after PostgreSQL's idle interval (10 s): the other
    // statements of this call (the conversation views) may come later, which can only lower the count.
    await new Promise((r) => setTimeout(r, 2500));
    readAfter = await messageRowsRead();
    const read = readAfter - readBefore;
    assert.ok(read >= 50, `statistics arrived (${read})`);
    assert.ok(read < 50 + 2 * GROUPS + 20, `read ${read} message rows to return 50`);

    // Advancing the cursors to the last seq received converges on everything, each message once, in order.
    const cursors: Record<string, number> = Object.fromEntries(ordered.map((id) => [id, 0]));
    const seen = new Map<string, number[]>(ordered.map((id) => [id, []]));
    let answer = first;
    let calls = 1;
    for (;;) {
      for (const m of answer.messages) {
        assert.equal(m.seq, cursors[m.conversationId]! + 1, "gapless after the cursor");
        cursors[m.conversationId] = m.seq;
        seen.get(m.conversationId)!.push(m.seq);
      }
      if (!answer.hasMore) break;
      assert.equal(answer.messages.length, 50);
      answer = await request(device, "sync", { cursors, limit: 50 });
      assert.equal(answer.ok, true);
      calls++;
      assert.ok(calls < 100, "converges");
    }
    assert.equal(calls, Math.ceil(total / 50));
    for (const [id, n] of counts) {
      assert.deepEqual(
        seen.get(id),
        Array.from({ length: n }, (_, i) => i + 1),
      );
    }
    const done = await request(device, "sync", { cursors, limit: 50 });
    assert.deepEqual([done.messages.length, done.hasMore, done.conversations.length], [0, false, 0]);
    device.close();
  });

  test("a user in MAX_CONVERSATIONS_PER_USER conversations cannot create or be added to more", async () => {
    const url = cluster.urls[0]!;
    const [full, other, third] = await Promise.all([registerUser(url), registerUser(url), registerUser(url)]);
    await fillGroups(full.user.id); // 20 of 22
    const group = (token: string, memberIds: string[]) =>
      api<{ conversation: { id: string }; error: { code: string } }>(url, "POST", "/v1/conversations", {
        token,
        body: { type: "group", title: "t", memberIds },
      });
    const g21 = await group(full.accessToken, [other.user.id]);
    assert.equal(g21.status, 201);
    assert.equal((await group(full.accessToken, [])).status, 201, "the 22nd");
    const over = await group(full.accessToken, [other.user.id]);
    assert.equal(over.status, 403);
    assert.equal(over.body.error.code, "forbidden");

    const direct = await api<{ error: { code: string } }>(url, "POST", "/v1/conversations", {
      token: third.accessToken,
      body: { type: "direct", userId: full.user.id },
    });
    assert.equal(direct.status, 403, "a direct conversation with a full user");
    const withFull = await group(third.accessToken, [full.user.id]);
    assert.equal(withFull.status, 403, "a group naming a full user");
    assert.equal(withFull.body.error.code, "forbidden");
    const own = await group(third.accessToken, []);
    assert.equal(own.status, 201);
    const add = await api<{ error: { code: string } }>(
      url,
      "POST",
      `/v1/conversations/${own.body.conversation.id}/members`,
      {
        token: third.accessToken,
        body: { userId: full.user.id },
      },
    );
    assert.equal(add.status, 403);
    assert.equal(add.body.error.code, "forbidden");
    // Refused creations left nothing behind: the third user is in exactly the one group it made.
    const list = await api<{ conversations: { id: string }[] }>(url, "GET", "/v1/conversations", {
      token: third.accessToken,
    });
    assert.deepEqual(
      list.body.conversations.map((c) => c.id),
      [own.body.conversation.id],
    );
    const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM members WHERE user_id = $1", [
      full.user.id,
    ]);
    assert.equal(rows[0]!.n, 22);
    // Re-adding an existing member is not an addition: still idempotent.
    // (By the group's admin: members may not add.)
    const again = await api(url, "POST", `/v1/conversations/${g21.body.conversation.id}/members`, {
      token: full.accessToken,
      body: { userId: full.user.id },
    });
    assert.equal(again.status, 201);
  });

  test("group creation is rate limited per user", async () => {
    const url = cluster.urls[0]!;
    const [user, someone] = await Promise.all([registerUser(url), registerUser(url)]);
    const create = () =>
      api<{ error: { code: string; details?: { retryAfterMs?: number } } }>(url, "POST", "/v1/conversations", {
        token: user.accessToken,
        body: { type: "group", title: "t", memberIds: [] },
      });
    for (let i = 0; i < 5; i++) assert.equal((await create()).status, 201);
    const limited = await create();
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error.code, "rate_limited");
    assert.ok((limited.body.error.details?.retryAfterMs ?? 0) > 0);
    // Direct conversations are not group creations.
    const direct = await api(url, "POST", "/v1/conversations", {
      token: user.accessToken,
      body: { type: "direct", userId: someone.user.id },
    });
    assert.equal(direct.status, 201);
  });
});
