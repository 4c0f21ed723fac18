// GET /v1/search/messages, the same tests against a gateway on real PostgreSQL and one on embedded PGlite: words in
// English, Korean, Chinese and Japanese; only the conversations the caller is in now; never a deleted message or the
// former text of an edited one; every match exactly once, newest first, across cursor pages; bad input refused; and
// the statement answered from the GIN index on a seeded table (EXPLAIN).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import {
  collectSql,
  eachConversationSql,
  estimateSearchPlan,
  quoteUnspacedRuns,
  UNSPACED_RANGES,
  walkBudget,
  walkSql,
} from "../../src/chat/search.js";
import { ChatApiError, ChatHttpApi } from "@chat-gateway/sdk";
import type { AuthResult, Message } from "@chat-gateway/protocol";
import { api, createConversation, registerUser, uniqueName } from "../helpers/clients.js";
import { startGateways } from "../helpers/gateways.js";
import { type DatabaseKind, type InProcessGateway, startInProcessGateway } from "../helpers/in-process.js";

interface SearchPage {
  messages: Message[];
  nextCursor: string | null;
}

interface ErrorBody {
  error: { code: string; details?: unknown };
}

test("walking newest-first is chosen only when a page of matches is expected early", () => {
  // 1M messages; a word in 1 of 5, a caller with 1 in 10 of the messages: ~1,000 rows expected, budget 16 times that.
  assert.equal(walkBudget(21, 1_000_000, 200_000, 100_000), 16_800);
  assert.equal(walkBudget(21, 1_000_000, 300, 100_000), null, "a rare word: collect its few matches");
  assert.equal(walkBudget(21, 1_000_000, 200_000, 500), null, "a caller with few messages: collect them");
  assert.equal(walkBudget(21, 10_000_000, 2_000_000, 20_000), null, "no walk past the row cap");
  assert.equal(walkBudget(21, 0, 0, 0), null, "no statistics yet");
});

test("runs of unspaced scripts become phrases; a leading minus still excludes them", () => {
  assert.equal(quoteUnspacedRuns("budget"), "budget");
  assert.equal(quoteUnspacedRuns("회의 budget"), ' "회의"  budget');
  assert.equal(quoteUnspacedRuns('"hello 会议" -開会 x-会'), '"hello 会议"  -"開会"  x- "会" ');
});

for (const kind of ["postgres", "pglite"] as const satisfies DatabaseKind[]) {
  describe(`message search on ${kind}`, { timeout: 120_000 }, () => {
    let gw: InProcessGateway;
    let alice: AuthResult;
    let bob: AuthResult;
    let carol: AuthResult;
    let aliceBob: string;
    let aliceCarol: string;

    const send = async (user: AuthResult, conversationId: string, content: string): Promise<Message> => {
      const res = await api<{ message: Message }>(gw.url, "POST", `/v1/conversations/${conversationId}/messages`, {
        token: user.accessToken,
        body: { clientMsgId: uniqueName("c"), content },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body.message;
    };
    const search = (user: AuthResult, params: Record<string, string>) =>
      api<SearchPage & ErrorBody>(gw.url, "GET", `/v1/search/messages?${new URLSearchParams(params).toString()}`, {
        token: user.accessToken,
      });
    const found = async (user: AuthResult, query: string, extra: Record<string, string> = {}) => {
      const res = await search(user, { query, ...extra });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body.messages.map((m) => m.content);
    };
    const sql = (text: string, ...params: unknown[]) => gw.database.sql<Record<string, unknown>>(text, params);

    before(async () => {
      gw = await startInProcessGateway({ database: kind });
      [alice, bob, carol] = await Promise.all([registerUser(gw.url), registerUser(gw.url), registerUser(gw.url)]);
      aliceBob = (await createConversation(gw.url, alice.accessToken, { type: "direct", userId: bob.user.id })).id;
      aliceCarol = (await createConversation(gw.url, alice.accessToken, { type: "direct", userId: carol.user.id })).id;
    });
    after(async () => {
      await gw?.close();
    });

    test("finds a word in English, Korean, Chinese and Japanese text", async () => {
      await send(alice, aliceBob, "The quarterly BUDGET review is on Friday.");
      await send(bob, aliceBob, "내일 회의가 있어요");
      await send(alice, aliceBob, "我们明天开会讨论预算。");
      await send(bob, aliceBob, "明日の会議は十時です");

      assert.deepEqual(await found(bob, "budget"), ["The quarterly BUDGET review is on Friday."]);
      assert.deepEqual(await found(bob, "quarterly review"), ["The quarterly BUDGET review is on Friday."]);
      assert.deepEqual(await found(bob, '"review quarterly"'), [], "a quoted phrase keeps its order");
      assert.deepEqual(await found(bob, "budg"), [], "words match whole, not as prefixes");
      assert.deepEqual(await found(alice, "회의"), ["내일 회의가 있어요"], "Hangul inside a word with its particle");
      assert.deepEqual(await found(alice, "회의가"), ["내일 회의가 있어요"]);
      assert.deepEqual(await found(alice, "开会"), ["我们明天开会讨论预算。"]);
      assert.deepEqual(await found(alice, "会議"), ["明日の会議は十時です"]);
      assert.deepEqual(await found(alice, "议会"), [], "CJK characters must be adjacent and in order");
      assert.deepEqual(await found(alice, "预算 budget"), [], "every word must be there");
      assert.deepEqual(await found(alice, "预算 or budget"), [
        "我们明天开会讨论预算。",
        "The quarterly BUDGET review is on Friday.",
      ]);
      assert.deepEqual(await found(alice, "会"), ["明日の会議は十時です", "我们明天开会讨论预算。"], "one character");
    });

    test("only conversations the caller is a member of, and not after leaving one", async () => {
      await send(alice, aliceCarol, "the kumquat is between alice and carol");
      assert.deepEqual(await found(bob, "kumquat"), []);
      assert.deepEqual(await found(alice, "kumquat"), ["the kumquat is between alice and carol"]);
      const other = await search(bob, { query: "kumquat", conversationId: aliceCarol });
      assert.equal(other.status, 404);
      assert.equal(other.body.error.code, "not_found");

      const group = await createConversation(gw.url, alice.accessToken, {
        type: "group",
        title: "pizza",
        memberIds: [bob.user.id, carol.user.id],
      });
      await send(alice, group.id, "pineapple pizza tonight");
      assert.deepEqual(await found(bob, "pineapple"), ["pineapple pizza tonight"]);
      assert.deepEqual(await found(bob, "pineapple", { conversationId: group.id }), ["pineapple pizza tonight"]);
      const left = await api(gw.url, "DELETE", `/v1/conversations/${group.id}/members/${bob.user.id}`, {
        token: bob.accessToken,
      });
      assert.equal(left.status, 204);
      assert.deepEqual(await found(bob, "pineapple"), []);
      assert.equal((await search(bob, { query: "pineapple", conversationId: group.id })).status, 404);
      assert.deepEqual(await found(carol, "pineapple"), ["pineapple pizza tonight"], "the others still find it");
    });

    test("never a deleted message, nor the former text of an edited one", async () => {
      const emptied = await send(alice, aliceBob, "xylophone lesson one");
      const flagged = await send(alice, aliceBob, "xylophone lesson two");
      const edited = await send(alice, aliceBob, "the original walrus");
      assert.equal((await found(bob, "xylophone")).length, 2);
      // What deleting does (a tombstone keeps its row and seq, content ""), and a row flagged but not yet emptied.
      await sql(`UPDATE messages SET deleted_at = now(), content = '' WHERE id = $1::uuid`, emptied.id);
      await sql(`UPDATE messages SET deleted_at = now() WHERE id = $1::uuid`, flagged.id);
      // What editing does: the content is replaced in place (former versions live in another table).
      await sql(`UPDATE messages SET content = 'the edited narwhal' WHERE id = $1::uuid`, edited.id);
      assert.deepEqual(await found(bob, "xylophone"), []);
      assert.deepEqual(await found(bob, "walrus"), []);
      assert.deepEqual(await found(bob, "narwhal"), ["the edited narwhal"]);
    });

    test("cursor paging returns every match exactly once, newest first", async () => {
      const sent: Message[] = [];
      for (let i = 0; i < 7; i++) sent.push(await send(i % 2 ? bob : alice, aliceBob, `paging marmot ${i}`));
      for (const extra of [{}, { conversationId: aliceBob }] as Record<string, string>[]) {
        const seen: Message[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const res = await search(bob, { query: "marmot", limit: "3", ...extra, ...(cursor ? { cursor } : {}) });
          assert.equal(res.status, 200, JSON.stringify(res.body));
          assert.ok(res.body.messages.length <= 3);
          seen.push(...res.body.messages);
          cursor = res.body.nextCursor;
          pages++;
        } while (cursor !== null && pages < 10);
        assert.equal(pages, 3);
        assert.deepEqual(seen.map((m) => m.id).sort(), sent.map((m) => m.id).sort(), "each exactly once");
        const newestFirst = [...seen].sort(
          (a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt) || (a.id < b.id ? 1 : -1),
        );
        assert.deepEqual(
          seen.map((m) => m.id),
          newestFirst.map((m) => m.id),
        );
        assert.deepEqual(
          seen[0],
          sent.find((m) => m.id === seen[0]!.id)!,
          "the message object as sent",
        );
      }
    });

    test("bad input is bad_request; no token is unauthorized", async () => {
      const badCursor = Buffer.from(JSON.stringify(["yesterday", "not-an-id"])).toString("base64url");
      const cases: Record<string, string>[] = [
        {},
        { query: "" },
        { query: "   " },
        { query: "x".repeat(201) },
        { query: "bell\u0007" },
        { query: "nul\u0000" },
        { query: "!!!" },
        { query: "-budget" },
        { query: "budget", limit: "0" },
        { query: "budget", limit: "51" },
        { query: "budget", limit: "ten" },
        { query: "budget", cursor: "garbage" },
        { query: "budget", cursor: badCursor },
      ];
      for (const params of cases) {
        const res = await search(bob, params);
        assert.equal(res.status, 400, `${JSON.stringify(params)}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, "bad_request");
      }
      assert.equal((await search(bob, { query: "x".repeat(200) })).status, 200, "200 characters are fine");
      assert.equal((await search(bob, { query: "budget", limit: "50" })).status, 200);
      const nobody = await search(bob, { query: "budget", conversationId: "not-a-uuid" });
      assert.equal(nobody.status, 404);
      const anonymous = await api(gw.url, "GET", "/v1/search/messages?query=budget");
      assert.equal(anonymous.status, 401);
    });

    test("any query answers 200 or bad_request, never a database error", async () => {
      // Search-syntax characters, quotes and unspaced scripts mixed with arbitrary code points.
      const tricky = fc.constantFrom(..."\"'-!&|:*()<>\\%_ \t会议한국어ไทย𠀋。、".split(""), "or", "<->", ":*", '-"');
      const query = fc.oneof(
        fc.string({ unit: "binary", minLength: 1, maxLength: 40 }),
        fc.array(tricky, { minLength: 1, maxLength: 20 }).map((parts) => parts.join("")),
      );
      await fc.assert(
        fc.asyncProperty(query, async (q) => {
          const res = await search(bob, { query: q });
          assert.ok(res.status === 200 || res.status === 400, `${JSON.stringify(q)}: ${res.status}`);
          if (res.status === 400) assert.equal(res.body.error.code, "bad_request");
        }),
        { numRuns: kind === "postgres" ? 200 : 60 },
      );
    });

    test("the SDK's searchMessages sends any script and follows the cursor", async () => {
      await send(alice, aliceBob, "일정 확인 부탁드립니다 (1)");
      await send(alice, aliceBob, "일정 확인 부탁드립니다 (2)");
      const sdk = new ChatHttpApi({ baseUrl: gw.url, getAccessToken: async () => bob.accessToken });
      const first = await sdk.searchMessages({ query: "일정 확인", limit: 1 });
      assert.deepEqual(
        first.messages.map((m) => m.content),
        ["일정 확인 부탁드립니다 (2)"],
      );
      assert.notEqual(first.nextCursor, null);
      const second = await sdk.searchMessages({
        query: "일정 확인",
        limit: 1,
        cursor: first.nextCursor!,
        conversationId: aliceBob,
      });
      assert.deepEqual(
        second.messages.map((m) => m.content),
        ["일정 확인 부탁드립니다 (1)"],
      );
      assert.equal(second.nextCursor, null);
      await assert.rejects(
        sdk.searchMessages({ query: "" }),
        (err) => err instanceof ChatApiError && err.code === "bad_request",
      );
    });

    test("the unspaced-script ranges of the code and of chat_search_text agree", async () => {
      const inRange = (cp: number) => UNSPACED_RANGES.some(([lo, hi]) => cp >= lo && cp <= hi);
      const probes = UNSPACED_RANGES.flatMap(([lo, hi]) => [lo - 1, lo, hi, hi + 1]).filter(
        (cp) => cp < 0xd800 || cp > 0xdfff,
      );
      for (const cp of probes) {
        const c = String.fromCodePoint(cp);
        const [row] = await sql(`SELECT chat_search_text($1) AS t`, c);
        assert.equal(row?.t !== c, inRange(cp), `U+${cp.toString(16)}`);
      }
    });

    test("the search reads the GIN index, not the table (EXPLAIN on 20,000 seeded rows)", async () => {
      // Seeded straight into the table (seq numbers far above the sent ones), in a conversation bob is not in.
      await sql(
        `INSERT INTO messages (id, conversation_id, seq, sender_id, client_msg_id, content, created_at)
         SELECT gen_random_uuid(), $1::uuid, 100000 + g, $2::uuid, 'seed-' || g,
                CASE WHEN g % 5000 = 0 THEN 'a rare needle ' || g ELSE 'common filler words ' || (g % 100) END,
                now() - interval '1 day' - g * interval '1 second'
           FROM generate_series(1, 20000) AS g`,
        aliceCarol,
        alice.user.id,
      );
      // VACUUM moves the new rows out of the GIN pending list, as autovacuum does on a live table.
      await sql(`VACUUM ANALYZE messages`);
      const rows = await sql(
        `EXPLAIN (FORMAT JSON) ${collectSql({ conversation: false, cursor: false })}`,
        quoteUnspacedRuns("needle"),
        alice.user.id,
        21,
      );
      const plan = JSON.stringify(rows);
      assert.match(plan, /"Index Name":\s*"messages_search_vector_idx"/, plan);
      assert.doesNotMatch(plan, /"Node Type":\s*"Seq Scan",[^}]*"Relation Name":\s*"messages"/, plan);
      assert.equal((await found(alice, "needle")).length, 4);
    });

    test("a very common word is answered by walking the newest messages: right answer, bounded buffers", async () => {
      // Seeded straight into bob's conversation, older than everything sent so far; "chatter" in every row.
      const n = kind === "postgres" ? 50_000 : 10_000;
      await sql(
        `INSERT INTO messages (id, conversation_id, seq, sender_id, client_msg_id, content, created_at)
         SELECT gen_random_uuid(), $1::uuid, 200000 + g, $2::uuid, 'chatter-' || g,
                'idle chatter number ' || g, now() - g * interval '1 millisecond'
           FROM generate_series(1, $3::int) AS g`,
        aliceBob,
        alice.user.id,
        n,
      );
      await sql(`UPDATE conversations SET last_seq = 200000 + $2::int WHERE id = $1::uuid`, aliceBob, n);
      await sql(`ANALYZE messages`);
      const query = quoteUnspacedRuns("chatter");
      const { walk: budget } = await estimateSearchPlan(gw.database.prisma, query, bob.user.id, undefined, 21);
      assert.ok(budget !== null && budget < 2000, `walks, with a small budget: ${budget}`);

      const explain = async (text: string, ...params: unknown[]) => {
        const [row] = await sql(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${text}`, ...params);
        const raw = row!["QUERY PLAN"];
        const [top] = (typeof raw === "string" ? JSON.parse(raw) : raw) as [
          { Plan: { "Actual Rows": number; "Shared Hit Blocks": number; "Shared Read Blocks": number } },
        ];
        return {
          rows: top.Plan["Actual Rows"],
          buffers: top.Plan["Shared Hit Blocks"] + top.Plan["Shared Read Blocks"],
        };
      };
      const walked = await explain(walkSql({ conversation: false, cursor: false }), query, bob.user.id, 21, budget);
      const collected = await explain(collectSql({ conversation: false, cursor: false }), query, bob.user.id, 21);
      assert.equal(walked.rows, 21, JSON.stringify({ budget, walked, collected }));
      assert.ok(walked.buffers < 400, `the walk reads a few pages: ${walked.buffers} buffers`);
      assert.ok(collected.buffers > 5 * walked.buffers, `collecting every match costs more: ${collected.buffers}`);

      // The answer, two pages of it, is the newest matches in bob's conversations, as a plain scan finds them.
      const expected = (
        await sql(
          `SELECT id::text FROM messages
            WHERE deleted_at IS NULL AND content LIKE '%chatter%'
              AND conversation_id IN (SELECT conversation_id FROM members WHERE user_id = $1::uuid)
            ORDER BY created_at DESC, id DESC LIMIT 40`,
          bob.user.id,
        )
      ).map((r) => r.id);
      const first = await search(bob, { query: "chatter" });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      const second = await search(bob, { query: "chatter", cursor: first.body.nextCursor! });
      assert.deepEqual(
        [...first.body.messages, ...second.body.messages].map((m) => m.id),
        expected,
      );

      // The same answer walking each of bob's conversations (chosen for a caller in a few large conversations), first
      // page and after a cursor, in few buffers too.
      const each = async (cursor: Message | undefined) =>
        (
          await sql(
            eachConversationSql({ conversation: false, cursor: cursor !== undefined }),
            query,
            bob.user.id,
            20,
            ...(cursor ? [cursor.createdAt, cursor.id] : []),
          )
        ).map((r) => r.id);
      const pageOne = await each(undefined);
      assert.deepEqual([...pageOne, ...(await each(first.body.messages.at(-1)))], expected);
      const walkedEach = await explain(
        eachConversationSql({ conversation: false, cursor: false }),
        query,
        bob.user.id,
        21,
      );
      assert.equal(walkedEach.rows, 21);
      assert.ok(walkedEach.buffers < 600, `each conversation walked a little: ${walkedEach.buffers} buffers`);
    });
  });
}

test("search is rate-limited per user (RATE_LIMIT_SEARCH_PER_MIN)", { timeout: 60_000 }, async () => {
  const gw = await startInProcessGateway({
    database: "postgres",
    env: { RATE_LIMITS: "on", RATE_LIMIT_SEARCH_PER_MIN: "3" },
  });
  try {
    const [dave, erin] = await Promise.all([registerUser(gw.url), registerUser(gw.url)]);
    const search = (user: AuthResult) =>
      api<ErrorBody>(gw.url, "GET", "/v1/search/messages?query=hello", { token: user.accessToken });
    for (let i = 0; i < 3; i++) assert.equal((await search(dave)).status, 200);
    const refused = await search(dave);
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.code, "rate_limited");
    assert.ok((refused.body.error.details as { retryAfterMs: number }).retryAfterMs > 0);
    assert.equal((await search(erin)).status, 200, "another user is not limited");
  } finally {
    await gw.close();
  }
});

test("what people search for never reaches the logs", { timeout: 60_000 }, async () => {
  const cluster = await startGateways(1, { adapter: "memory", env: { LOG_LEVEL: "info" } });
  try {
    const url = cluster.urls[0]!;
    const user = await registerUser(url);
    const secret = "confidentialsearchword";
    const res = await api(url, "GET", `/v1/search/messages?query=${secret}&limit=0`, { token: user.accessToken });
    assert.equal(res.status, 400, "refused, and still not logged");
    await api(url, "GET", `/v1/search/messages?query=${secret}`, { token: user.accessToken });
    await api(url, "GET", "/v1/users/me", { token: user.accessToken });
    const logs = cluster.gateways[0]!.logs;
    assert.ok(
      logs.some((line) => line.includes("/v1/users/me")),
      "request lines are logged at this level",
    );
    assert.deepEqual(
      logs.filter((line) => line.includes(secret)),
      [],
    );
  } finally {
    await cluster.cleanup();
  }
});
