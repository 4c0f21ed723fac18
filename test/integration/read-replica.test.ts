// DATABASE_READ_URL on a real streaming replica (test/helpers/postgres-replica.ts: pg_basebackup -R of the local
// PostgreSQL, on its own port). History, search, user search and the conversation list are answered by the replica
// (shown by what only the replica could answer: with its replay paused they miss what the primary has); sync and gap
// fill never miss a committed message while the replica lags (they read the primary then), and no history page stops
// short of the last message as if it were the end; with the replica stopped every read falls back to the primary.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Conversation, Message } from "@chat-gateway/protocol";
import type { AuthResult } from "@chat-gateway/protocol";
import { api, connectDevice, createConversation, registerUser, requestOk, uniqueName } from "../helpers/clients.js";
import { type InProcessGateway, startInProcessGateway } from "../helpers/in-process.js";
import { type PostgresReplica, startPostgresReplica } from "../helpers/postgres-replica.js";

interface HistoryPage {
  messages: Message[];
  hasMore: boolean;
}

describe("read replica", { timeout: 600_000 }, () => {
  let replica: PostgresReplica | undefined;
  let gw: InProcessGateway | undefined;
  let alice: AuthResult;
  let bob: AuthResult;
  let group: string;
  const word = uniqueName("zebra");

  const url = () => gw!.url;
  const send = async (content: string): Promise<Message> => {
    const res = await api<{ message: Message }>(url(), "POST", `/v1/conversations/${group}/messages`, {
      token: alice.accessToken,
      body: { clientMsgId: uniqueName("c"), content },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.message;
  };
  const get = async <T>(path: string, user = bob): Promise<T> => {
    const res = await api<T>(url(), "GET", path, { token: user.accessToken });
    assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const history = (query: string) => get<HistoryPage>(`/v1/conversations/${group}/messages?${query}`);
  const seqs = (messages: Message[]) => messages.map((m) => m.seq);
  const listed = async () =>
    (await get<{ conversations: Conversation[] }>("/v1/conversations")).conversations.find((c) => c.id === group);
  const searched = async () =>
    (await get<{ messages: Message[] }>(`/v1/search/messages?query=${word}`)).messages.map((m) => m.seq);
  const usersFound = async (prefix: string) =>
    (await get<{ users: { id: string }[] }>(`/v1/users?query=${prefix}`)).users.map((u) => u.id);
  /** chat_db_reads_total for one read and source (summed over reasons). */
  const reads = async (read: string, source: "replica" | "primary", reason?: string) => {
    const text = await (await fetch(`${url()}/metrics`)).text();
    return text
      .split("\n")
      .filter((l) => l.startsWith(`chat_db_reads_total{read="${read}",source="${source}"`))
      .filter((l) => reason === undefined || l.includes(`reason="${reason}"`))
      .reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0);
  };
  const sync = async (cursors: Record<string, number>, limit = 100) => {
    const device = await connectDevice(url(), bob.accessToken);
    try {
      return await requestOk(device, "sync", { cursors, limit });
    } finally {
      device.close();
    }
  };

  before(async () => {
    replica = await startPostgresReplica();
    const r = replica;
    gw = await startInProcessGateway({ database: "postgres", readUrlFor: (primaryUrl) => r.urlFor(primaryUrl) });
    [alice, bob] = await Promise.all([registerUser(url()), registerUser(url())]);
    group = (
      await createConversation(url(), alice.accessToken, { type: "group", title: "g", memberIds: [bob.user.id] })
    ).id;
    for (let i = 1; i <= 3; i++) await send(`before ${i} ${word}`);
    await replica.waitForCatchUp();
  });

  after(async () => {
    // Both, whatever failed: the gateway (and its scratch database), then the replica's server and folder.
    try {
      await replica?.resumeReplay().catch(() => undefined);
      await gw?.close();
    } finally {
      replica?.cleanup();
    }
  });

  test("a caught-up replica answers history, search, user search, the list and sync", async () => {
    assert.deepEqual(seqs((await history("limit=50")).messages), [1, 2, 3]);
    assert.deepEqual(seqs((await history("after=1")).messages), [2, 3]);
    assert.deepEqual((await searched()).sort(), [1, 2, 3]);
    assert.deepEqual(await usersFound(alice.user.username), [alice.user.id]);
    assert.equal((await listed())?.lastSeq, 3);
    const answer = await sync({ [group]: 1 });
    assert.deepEqual(seqs(answer.messages), [2, 3]);
    for (const read of [
      "history",
      "search",
      "user_search",
      "conversation_list",
      "sync_messages",
      "sync_conversations",
    ]) {
      assert.ok((await reads(read, "replica")) >= 1, `${read} served by the replica`);
      assert.equal(await reads(read, "primary"), 0, `${read} never needed the primary`);
    }
    // The replica's own statistics saw the history statement too (pg_stat_activity shows who is connected).
    const sessions = await replica!.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname LIKE 'gw_test_%' AND backend_type = 'client backend'",
    );
    assert.ok((sessions[0]?.n ?? 0) >= 1, "the gateway holds connections to the replica");
  });

  test("with replay paused: lists and search lag, but sync, gap fill and history miss nothing", async () => {
    await replica!.pauseReplay();
    const carol = await registerUser(url());
    const fourth = await send(`after 4 ${word}`);
    const fifth = await send(`after 5 ${word}`);
    assert.deepEqual([fourth.seq, fifth.seq], [4, 5]);

    // What only the replica answers: it has not replayed the new messages or the new user.
    assert.equal((await listed())?.lastSeq, 3, "the list comes from the replica");
    assert.deepEqual((await searched()).sort(), [1, 2, 3], "search comes from the replica");
    assert.deepEqual(await usersFound(carol.user.username), [], "user search comes from the replica");

    const behindBefore = await reads("history", "primary", "behind");
    // Gap fill (after a seq) and every history page reach the last message: the replica's short answer is not used.
    assert.deepEqual(seqs((await history("after=3")).messages), [4, 5]);
    const newest = await history("limit=2");
    assert.deepEqual(seqs(newest.messages), [4, 5]);
    assert.equal(newest.hasMore, true);
    assert.deepEqual(seqs((await history("before=5&limit=2")).messages), [3, 4]);
    assert.deepEqual(seqs((await history("after=0&limit=2")).messages), [1, 2], "a page the replica has in full");
    assert.equal(
      await reads("history", "primary", "behind"),
      behindBefore + 3,
      "three pages read again from the primary",
    );

    // Sync from a cursor and from nothing: every committed message, and conversations showing the last seq.
    const fromCursor = await sync({ [group]: 3 });
    assert.deepEqual(seqs(fromCursor.messages), [4, 5]);
    assert.equal(fromCursor.conversations.find((c) => c.id === group)?.lastSeq, 5);
    const fromNothing = await sync({});
    assert.deepEqual(seqs(fromNothing.messages), [1, 2, 3, 4, 5]);
    assert.equal(fromNothing.hasMore, false);
    assert.ok((await reads("sync_messages", "primary", "behind")) >= 2, "sync read its messages from the primary");
    assert.ok((await reads("sync_conversations", "primary", "behind")) >= 2);

    // A change the replica has not replayed: pages and sync show the message as it is now, not as the replica has it.
    const second = (await history("after=1&limit=1")).messages[0]!;
    const edit = await api<{ message: Message }>(url(), "PATCH", `/v1/conversations/${group}/messages/${second.id}`, {
      token: alice.accessToken,
      body: { content: `edited while the replica was paused ${word}` },
    });
    assert.equal(edit.status, 200, JSON.stringify(edit.body));
    const page = await history("after=1&limit=1");
    assert.deepEqual(
      page.messages.map((m) => [m.seq, m.content]),
      [[2, `edited while the replica was paused ${word}`]],
      "a page the replica has every seq of, but not the edit",
    );
    // Seqs 2 and 3 only (the limit), which the replica has: only the change counter tells it is behind.
    const cut = await sync({ [group]: 1 }, 2);
    assert.deepEqual(
      cut.messages.map((m) => [m.seq, m.content]),
      [
        [2, `edited while the replica was paused ${word}`],
        [3, `before 3 ${word}`],
      ],
    );
    const synced = await sync({});
    assert.equal(synced.messages.find((m) => m.seq === 2)?.content, `edited while the replica was paused ${word}`);

    // Once the replica catches up, it answers again, with everything.
    await replica!.resumeReplay();
    await replica!.waitForCatchUp();
    assert.equal((await listed())?.lastSeq, 5);
    assert.deepEqual((await searched()).sort(), [1, 2, 3, 4, 5]);
    assert.deepEqual(await usersFound(carol.user.username), [carol.user.id]);
    const servedBefore = await reads("history", "replica");
    assert.deepEqual(seqs((await history("after=3")).messages), [4, 5]);
    assert.equal(await reads("history", "replica"), servedBefore + 1);
  });

  test("with the replica stopped every read falls back to the primary", async () => {
    replica!.stop();
    const sixth = await send(`stopped 6 ${word}`);
    assert.equal(sixth.seq, 6);
    assert.deepEqual(seqs((await history("after=4")).messages), [5, 6]);
    assert.deepEqual((await searched()).sort(), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(await usersFound(alice.user.username), [alice.user.id]);
    assert.equal((await listed())?.lastSeq, 6);
    assert.deepEqual(seqs((await sync({ [group]: 4 })).messages), [5, 6]);
    assert.ok((await reads("history", "primary", "error")) >= 1, "the first failure is counted as an error");
    assert.ok((await reads("search", "primary", "down")) >= 1, "later reads skip the resting replica");
    const ready = await fetch(`${url()}/readyz`);
    assert.equal(ready.status, 200, "a replica down does not take the pod out of service");
  });
});
