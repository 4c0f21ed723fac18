// What one client can make the gateway send or query: typing starts and stops are throttled alike and cost no
// query once a conversation's members are cached, re-adding a member announces nothing, and a user's sockets per pod
// are capped (the oldest is told `too_many_sockets`, and the SDK does not reconnect on it).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { ChatClient, ChatHttpApi, type ConnectionState } from "@chat-gateway/sdk";
import {
  api,
  collect,
  connectDevice,
  createConversation,
  type Device,
  eventually,
  registerUser,
  request,
  waitForEvent,
} from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("amplification limits", () => {
  let cluster: Cluster;
  let db: pg.Client;
  const devices: Device[] = [];
  before(async () => {
    cluster = await startGateways(1, { adapter: "sharded", env: { MAX_SOCKETS_PER_USER: "3" } });
    db = new pg.Client({ connectionString: cluster.databaseUrl });
    await db.connect();
  });
  after(async () => {
    for (const d of devices) d.close();
    await db?.end();
    await cluster.cleanup();
  });

  async function group(size: number) {
    const url = cluster.urls[0]!;
    const users = await Promise.all(Array.from({ length: size }, () => registerUser(url)));
    const conversation = await createConversation(url, users[0]!.accessToken, {
      type: "group",
      title: "t",
      memberIds: users.slice(1).map((u) => u.user.id),
    });
    return { url, users, conversation };
  }

  test("typing: a stop right after a start passes once, repeated stops and starts are dropped", async () => {
    const { url, users, conversation } = await group(2);
    const [typist, reader] = users as [(typeof users)[0], (typeof users)[0]];
    const typing = await connectDevice(url, typist.accessToken);
    const reading = await connectDevice(url, reader.accessToken);
    devices.push(typing, reading);
    const seen = collect(reading, "typing");
    const type = (isTyping: boolean) => request(typing, "typing", { conversationId: conversation.id, isTyping });
    for (const isTyping of [true, false, false, false, true, false, true, false, false]) {
      assert.equal((await type(isTyping)).ok, true);
    }
    await sleep(500);
    assert.deepEqual(
      seen.map((e) => e.isTyping),
      [true, false],
    );
    // A stop with no start forwarded before it (another conversation) is dropped as well.
    const other = await group(2);
    const lone = await connectDevice(url, other.users[1]!.accessToken);
    devices.push(lone);
    const loneSeen = collect(lone, "typing");
    const typing2 = await connectDevice(url, other.users[0]!.accessToken);
    devices.push(typing2);
    for (let i = 0; i < 5; i++) {
      await request(typing2, "typing", { conversationId: other.conversation.id, isTyping: false });
    }
    await sleep(300);
    assert.equal(loneSeen.length, 0);
    // Not a member: not_found, as before.
    const stranger = await request(typing, "typing", {
      conversationId: other.conversation.id,
      isTyping: true,
    });
    assert.equal(stranger.error?.code, "not_found");
  });

  test("typing: with the members cached, typing events cost no database query", async () => {
    const { url, users, conversation } = await group(3);
    const typing = await connectDevice(url, users[0]!.accessToken);
    const reading = await connectDevice(url, users[1]!.accessToken);
    devices.push(typing, reading);
    const seen = collect(reading, "typing");
    // The first event reads the members (and checks membership).
    await request(typing, "typing", { conversationId: conversation.id, isTyping: true });
    await waitForEvent(reading, "typing");
    const memberReads = async () => {
      const { rows } = await db.query<{ n: string }>(
        `SELECT (coalesce(seq_scan, 0) + coalesce(idx_scan, 0))::text AS n
           FROM pg_stat_user_tables WHERE relname = 'members'`,
      );
      return Number(rows[0]!.n);
    };
    // A backend reports its statistics when idle, but at most once a second: what it could not report then waits for
    // PostgreSQL's idle interval (10 s). Let everything before the measurement be reported, and everything in it.
    const STATS_SETTLE_MS = 11_000;
    await sleep(STATS_SETTLE_MS);
    const before = await memberReads();
    for (let i = 0; i < 20; i++) {
      await request(typing, "typing", { conversationId: conversation.id, isTyping: i % 2 === 1 });
    }
    await sleep(STATS_SETTLE_MS);
    const reads = (await memberReads()) - before;
    // The cached list expired during the wait: one reload (membership check and member list) serves all 20 events,
    // where every event used to cost a membership query (and every forwarded one a member list).
    assert.ok(reads <= 2, `${reads} reads of members for 20 typing events`);
    // The first start; after the wait a stop (the last forwarded was a start), a start (its window passed), one stop.
    assert.deepEqual(
      seen.map((e) => e.isTyping),
      [true, false, true, false],
    );
  });

  test("re-adding an existing member announces nothing; adding a new one announces once", async () => {
    const { url, users, conversation } = await group(3);
    const watcher = await connectDevice(url, users[1]!.accessToken);
    devices.push(watcher);
    const updates = collect(watcher, "conversation:updated");
    for (let i = 0; i < 3; i++) {
      const again = await api(url, "POST", `/v1/conversations/${conversation.id}/members`, {
        token: users[0]!.accessToken,
        body: { userId: users[2]!.user.id },
      });
      assert.equal(again.status, 201, "still idempotent");
    }
    await sleep(500);
    assert.equal(updates.length, 0);
    const newcomer = await registerUser(url);
    const added = await api(url, "POST", `/v1/conversations/${conversation.id}/members`, {
      token: users[0]!.accessToken,
      body: { userId: newcomer.user.id },
    });
    assert.equal(added.status, 201);
    await eventually(() => updates.length >= 1, 5_000, "the addition announced");
    await sleep(300);
    assert.equal(updates.length, 1);
  });

  test("a fourth socket of a user ends the oldest with too_many_sockets; the others stay", async () => {
    const url = cluster.urls[0]!;
    const user = await registerUser(url);
    const first = await connectDevice(url, user.accessToken);
    const ended = waitForEvent(first, "session:ended");
    const disconnected = new Promise((resolve) => first.once("disconnect", resolve));
    const rest = [
      await connectDevice(url, user.accessToken),
      await connectDevice(url, user.accessToken),
      await connectDevice(url, user.accessToken),
    ];
    devices.push(first, ...rest);
    assert.deepEqual(await ended, { reason: "too_many_sockets" });
    await disconnected;
    await sleep(300);
    assert.ok(
      rest.every((d) => d.connected),
      "the three newest stay",
    );
    for (const d of rest) d.close();
  });

  test("the SDK displaced by too_many_sockets stays disconnected instead of displacing another device", async () => {
    const url = cluster.urls[0]!;
    const user = await registerUser(url);
    const http = new ChatHttpApi({ baseUrl: url });
    const session = await http.login({ username: user.user.username, password: "correct horse battery" });
    const client = new ChatClient({ url, auth: session, transports: ["websocket"], reconnectionDelay: 50 });
    const states: ConnectionState[] = [];
    const displaced: string[] = [];
    client.on("state", ({ state }) => states.push(state));
    client.on("displaced", ({ reason }) => displaced.push(reason));
    try {
      await client.connect();
      const others = [
        await connectDevice(url, user.accessToken),
        await connectDevice(url, user.accessToken),
        await connectDevice(url, user.accessToken),
      ];
      devices.push(...others);
      const othersEnded = others.map((d) => collect(d, "session:ended"));
      await eventually(() => displaced.length === 1, 5_000, "displaced");
      await sleep(1500); // several reconnection delays
      assert.equal(states.at(-1), "disconnected");
      assert.deepEqual(displaced, ["too_many_sockets"]);
      assert.ok(
        others.every((d) => d.connected),
        "no other device displaced in turn",
      );
      assert.deepEqual(othersEnded.flat(), []);

      // Back on this device: it reconnects, and the oldest of the others goes.
      others[2]!.close();
      client.reconnect();
      await eventually(() => states.at(-1) === "connected", 5_000, "reconnected");
    } finally {
      await client.close();
    }
  });
});
