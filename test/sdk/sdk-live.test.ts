// The SDK against real gateway processes on the real Redis and PostgreSQL: several devices on different pods,
// network cuts (a TCP relay we can unplug), lost acks, restarts with persisted state, and short-lived tokens.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  type AuthSession,
  ChatClient,
  type ChatClientOptions,
  ChatHttpApi,
  type ConnectionState,
  MemoryCursorStorage,
  MemoryOutboxStorage,
  type Message,
  type SignedOutReason,
} from "@chat-gateway/sdk";
import { eventually, uniqueName } from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.js";

const PASSWORD = "correct horse battery";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One app instance: a ChatClient and everything it told the app. */
interface Device {
  client: ChatClient;
  inbox: Message[];
  states: ConnectionState[];
  signedOut: SignedOutReason[];
  sentIds: string[];
}

const devices: Device[] = [];

function device(url: string, auth: ChatClientOptions["auth"], extra: Partial<ChatClientOptions> = {}): Device {
  const client = new ChatClient({
    url,
    auth,
    transports: ["websocket"],
    reconnectionDelay: 100,
    reconnectionDelayMax: 500,
    ackTimeoutMs: 1_000,
    ...extra,
  });
  const d: Device = { client, inbox: [], states: [], signedOut: [], sentIds: [] };
  client.on("message", (m) => d.inbox.push(m));
  client.on("state", ({ state }) => d.states.push(state));
  client.on("signedOut", ({ reason }) => d.signedOut.push(reason));
  client.on("sent", ({ entry }) => d.sentIds.push(entry.clientMsgId));
  devices.push(d);
  return d;
}

function assertInOrderOnce(d: Device, conversationId: string, what: string): void {
  const mine = d.inbox.filter((m) => m.conversationId === conversationId);
  const seqs = mine.map((m) => m.seq);
  assert.deepEqual(
    seqs,
    Array.from({ length: seqs.length }, (_, i) => i + 1),
    `${what}: seqs in order without holes or repeats`,
  );
  assert.equal(new Set(mine.map((m) => m.id)).size, mine.length, `${what}: no id twice`);
}

const countOf = (d: Device, clientMsgId: string) => d.inbox.filter((m) => m.clientMsgId === clientMsgId).length;

describe("SDK against two gateways", () => {
  let cluster: Cluster;
  let proxy: TcpProxy;
  let alice: AuthSession;
  let bob: AuthSession;
  let conversationId: string;
  let alicePhone: Device;
  let aliceLaptop: Device;
  let bobPhone: Device;
  let bobLaptop: Device;

  const login = (url: string, username: string, deviceName: string) =>
    new ChatHttpApi({ baseUrl: url }).login({ username, password: PASSWORD, deviceName });

  before(async () => {
    cluster = await startGateways(2);
    const [g0] = cluster.urls as [string, string];
    const api = new ChatHttpApi({ baseUrl: g0 });
    alice = await api.register({ username: uniqueName("alice"), password: PASSWORD });
    bob = await api.register({ username: uniqueName("bob"), password: PASSWORD });
    proxy = await startTcpProxy(cluster.urls[1]!);
  });

  after(async () => {
    await Promise.all(devices.map((d) => d.client.close()));
    await proxy?.close();
    await cluster?.cleanup();
  });

  test("four devices on two pods: every message arrives exactly once, in order, on all four", async () => {
    const [g0, g1] = cluster.urls as [string, string];
    // Each device is its own login: two devices sharing one refresh token would revoke each other on rotation.
    alicePhone = device(g0, alice);
    aliceLaptop = device(g1, await login(g1, alice.user.username, "laptop"));
    bobPhone = device(g0, bob);
    bobLaptop = device(g1, await login(g0, bob.user.username, "laptop"));
    const all = [alicePhone, aliceLaptop, bobPhone, bobLaptop];
    await Promise.all(all.map((d) => d.client.connect()));
    assert.deepEqual(
      all.map((d) => d.client.state),
      ["connected", "connected", "connected", "connected"],
    );
    const conversation = await alicePhone.client.api.openDirectConversation(bob.user.id);
    conversationId = conversation.id;

    const perDevice = 10;
    await Promise.all(
      all.flatMap((d, i) =>
        Array.from({ length: perDevice }, (_, j) => d.client.send(conversationId, `device ${i} message ${j}`)),
      ),
    );
    const total = all.length * perDevice;
    await eventually(() => all.every((d) => d.inbox.length >= total), 20_000, "all messages on all devices");
    await sleep(300); // anything extra would arrive now
    for (const [i, d] of all.entries()) {
      assert.equal(d.inbox.length, total, `device ${i} got each message once`);
      assertInOrderOnce(d, conversationId, `device ${i}`);
      assert.deepEqual(
        d.inbox.map((m) => m.id),
        alicePhone.inbox.map((m) => m.id),
        "every device sees the same order",
      );
      // A device's own sends keep the order it sent them in.
      const own = alicePhone.inbox.filter((m) => m.content.startsWith(`device ${i} `)).map((m) => m.content);
      assert.deepEqual(
        own,
        Array.from({ length: perDevice }, (_, j) => `device ${i} message ${j}`),
      );
      assert.equal(d.sentIds.length, perDevice);
      assert.deepEqual(d.client.pendingSends(), []);
      assert.equal(d.client.cursor(conversationId), total);
    }
    // Delivery markers went out coalesced and reached the other side: bob's devices ack alice's next message.
    const delivered: number[] = [];
    alicePhone.client.on("conversationDelivered", (e) => {
      if (e.userId === bob.user.id) delivered.push(e.seq);
    });
    await alicePhone.client.send(conversationId, "one more");
    await eventually(() => delivered.includes(total + 1), 10_000, "bob's delivery marker reaches alice");
  });

  test("a device that was offline catches up by sync, paging, exactly once and in order", async () => {
    const bobTablet = device(proxy.url, await login(proxy.url, bob.user.username, "tablet"), {
      syncPageSize: 7, // forces several pages
      cursorStorage: new MemoryCursorStorage(),
    });
    let syncedPages = 0;
    bobTablet.client.on("synced", () => syncedPages++);
    await bobTablet.client.connect();
    const before = alicePhone.inbox.length;
    assert.equal(bobTablet.inbox.length, before, "the first sync brought the whole history");
    assertInOrderOnce(bobTablet, conversationId, "tablet after first sync");

    proxy.setMode("down");
    await eventually(() => bobTablet.client.state === "reconnecting", 5_000, "tablet notices the cut");
    for (let i = 0; i < 5; i++) await alicePhone.client.send(conversationId, `while the tablet was away ${i}`);
    await eventually(() => aliceLaptop.inbox.length === before + 5, 10_000, "the others got them");
    await sleep(300);
    assert.equal(bobTablet.inbox.length, before, "nothing can arrive while cut off");

    proxy.setMode("up");
    await eventually(() => bobTablet.inbox.length === before + 5, 15_000, "tablet catches up");
    await eventually(() => syncedPages === 2, 5_000, "a second sync after the reconnection");
    await sleep(300);
    assert.equal(bobTablet.inbox.length, before + 5);
    assertInOrderOnce(bobTablet, conversationId, "tablet after reconnect");
    assert.ok(bobTablet.states.includes("reconnecting"));
    assert.equal(bobTablet.client.state, "connected");
    await bobTablet.client.close();
  });

  test("a message missed by the live stream is fetched over HTTP as soon as a later one shows the gap", async () => {
    const bobTablet = device(proxy.url, await login(proxy.url, bob.user.username, "tablet gap"));
    await bobTablet.client.connect();
    const cursor = bobTablet.client.cursor(conversationId);
    // The gateway's frames to the tablet are dropped (as if a fan-out were lost), the connection stays up.
    proxy.setMode("ack-loss");
    const lost = await alicePhone.client.send(conversationId, "lost in fan-out");
    await eventually(() => countOf(aliceLaptop, lost.clientMsgId) === 1, 10_000, "stored");
    await sleep(300);
    proxy.setMode("up");
    const next = await alicePhone.client.send(conversationId, "shows the gap");
    await eventually(() => countOf(bobTablet, next.clientMsgId) === 1, 10_000, "gap filled");
    assert.deepEqual(
      bobTablet.inbox.slice(-2).map((m) => [m.seq, m.content]),
      [
        [cursor + 1, "lost in fan-out"],
        [cursor + 2, "shows the gap"],
      ],
    );
    assert.ok(!bobTablet.states.includes("reconnecting"), "filled without a reconnection and sync");
    assertInOrderOnce(bobTablet, conversationId, "after the gap fill");
    await bobTablet.client.close();
  });

  test("typing is throttled on the way out and reaches the other member", async () => {
    const seen: boolean[] = [];
    bobLaptop.client.on("typing", (e) => {
      if (e.conversationId === conversationId && e.userId === alice.user.id) seen.push(e.isTyping);
    });
    for (let i = 0; i < 5; i++) alicePhone.client.setTyping(conversationId, true);
    alicePhone.client.setTyping(conversationId, false);
    await eventually(() => seen.length >= 2, 5_000, "typing on and off");
    await sleep(300);
    assert.deepEqual(seen, [true, false], JSON.stringify(seen));
  });

  test("a message written offline is delivered after the reconnection, exactly once", async () => {
    const bobTablet = device(proxy.url, await login(proxy.url, bob.user.username, "tablet 2"));
    await bobTablet.client.connect();
    proxy.setMode("down");
    await eventually(() => bobTablet.client.state === "reconnecting", 5_000, "tablet offline");

    const entry = await bobTablet.client.send(conversationId, "written in a tunnel");
    assert.deepEqual(
      bobTablet.client.pendingSends().map((e) => e.clientMsgId),
      [entry.clientMsgId],
    );
    await sleep(500);
    assert.equal(countOf(alicePhone, entry.clientMsgId), 0);

    proxy.setMode("up");
    await eventually(() => countOf(alicePhone, entry.clientMsgId) === 1, 15_000, "alice gets it");
    await eventually(() => countOf(bobTablet, entry.clientMsgId) === 1, 5_000, "the tablet gets its own");
    await sleep(500);
    for (const d of [alicePhone, aliceLaptop, bobPhone, bobLaptop, bobTablet]) {
      assert.equal(countOf(d, entry.clientMsgId), 1);
      assertInOrderOnce(d, conversationId, "after the offline send");
    }
    assert.deepEqual(bobTablet.client.pendingSends(), []);
    assert.deepEqual(bobTablet.sentIds, [entry.clientMsgId]);
    await bobTablet.client.close();
  });

  test("when the ack is lost the send is retried with the same clientMsgId and stored once", async () => {
    const bobTablet = device(proxy.url, await login(proxy.url, bob.user.username, "tablet 3"));
    await bobTablet.client.connect();
    proxy.setMode("ack-loss");
    const entry = await bobTablet.client.send(conversationId, "did it go through?");
    // The gateway stored it and fanned it out; the tablet never heard back, and keeps retrying.
    await eventually(() => countOf(alicePhone, entry.clientMsgId) === 1, 10_000, "stored on the first try");
    await eventually(() => (bobTablet.client.pendingSends()[0]?.attempts ?? 0) >= 2, 10_000, "a retry");
    proxy.setMode("up");
    proxy.cutAll();
    await eventually(() => bobTablet.client.pendingSends().length === 0, 15_000, "finally acked");
    await eventually(() => countOf(bobTablet, entry.clientMsgId) === 1, 5_000, "the tablet has it");
    await sleep(500);
    for (const d of [alicePhone, aliceLaptop, bobPhone, bobLaptop, bobTablet]) {
      assert.equal(countOf(d, entry.clientMsgId), 1, "one stored message, not one per retry");
    }
    assertInOrderOnce(alicePhone, conversationId, "after the lost ack");
    await bobTablet.client.close();
  });

  test("outbox and cursors persisted by the app survive a restart", async () => {
    const outboxStorage = new MemoryOutboxStorage();
    const cursorStorage = new MemoryCursorStorage();
    const tokens = await login(proxy.url, bob.user.username, "tablet 4");
    const run1 = device(proxy.url, tokens, { outboxStorage, cursorStorage });
    await run1.client.connect();
    const seen = run1.inbox.length;
    proxy.setMode("down");
    await eventually(() => run1.client.state === "reconnecting", 5_000, "offline");
    const entry = await run1.client.send(conversationId, "sent just before the app was killed");
    await run1.client.close();
    await alicePhone.client.send(conversationId, "while the app was not running");
    await eventually(() => aliceLaptop.inbox.at(-1)?.content === "while the app was not running", 10_000, "stored");

    proxy.setMode("up");
    const run2 = device(proxy.url, tokens, { outboxStorage, cursorStorage });
    await run2.client.connect();
    await eventually(() => countOf(alicePhone, entry.clientMsgId) === 1, 15_000, "the old run's message went out");
    await eventually(() => countOf(run2, entry.clientMsgId) === 1, 5_000, "and came back to the new run");
    // The new run starts from the stored cursor: only what the old one had not seen.
    assert.ok(run2.inbox.every((m) => m.seq > seen));
    assert.deepEqual(
      run2.inbox.map((m) => m.seq),
      Array.from({ length: run2.inbox.length }, (_, i) => seen + 1 + i),
    );
    assert.ok(run2.inbox.some((m) => m.content === "while the app was not running"));
    assert.deepEqual(await outboxStorage.load(), []);
  });

  test("credentials the gateway refuses end in signedOut, not a reconnection loop", async () => {
    const d = device(cluster.urls[0]!, { accessToken: "not-a-jwt", refreshToken: "not-a-token", expiresIn: 900 });
    await assert.rejects(d.client.connect(), { code: "unauthorized" });
    assert.deepEqual(d.signedOut, ["unauthorized"]);
    assert.equal(d.client.state, "disconnected");
  });

  test("logout ends the session of that device only", async () => {
    const d = device(cluster.urls[1]!, await login(cluster.urls[1]!, bob.user.username, "old phone"));
    await d.client.connect();
    await d.client.logout();
    assert.deepEqual(d.signedOut, ["logged_out"]);
    assert.equal(d.client.state, "disconnected");
    const message = await bobPhone.client.send(conversationId, "the other devices are still signed in");
    await eventually(() => countOf(bobPhone, message.clientMsgId) === 1, 10_000, "bob's phone still works");
  });
});

describe("SDK with short-lived access tokens", () => {
  let cluster: Cluster;
  let proxy: TcpProxy;

  before(async () => {
    cluster = await startGateways(1, { env: { ACCESS_TOKEN_TTL: "6" } });
    proxy = await startTcpProxy(cluster.urls[0]!);
  });

  after(async () => {
    await Promise.all(devices.map((d) => d.client.close()));
    await proxy?.close();
    await cluster?.cleanup();
  });

  test("the SDK refreshes before expiry and keeps the socket, and a reconnection after expiry gets a fresh token", async () => {
    const api = new ChatHttpApi({ baseUrl: proxy.url });
    const carol = await api.register({ username: uniqueName("carol"), password: PASSWORD });
    const dave = await api.register({ username: uniqueName("dave"), password: PASSWORD });
    const d = device(proxy.url, carol);
    const rotated: string[] = [];
    d.client.on("tokens", (t) => rotated.push(t.refreshToken));
    await d.client.connect();
    const { id } = await d.client.api.openDirectConversation(dave.user.id);

    await sleep(13_000); // more than two token lifetimes
    assert.ok(rotated.length >= 2, `refreshed ${rotated.length} times`);
    assert.equal(new Set(rotated).size, rotated.length, "every refresh rotated the refresh token");
    assert.ok(!d.states.includes("reconnecting"), `the socket stayed up: ${d.states.join(" -> ")}`);
    const first = await d.client.send(id, "still here");
    await eventually(() => countOf(d, first.clientMsgId) === 1, 5_000, "send on the long-lived socket");

    // Offline for longer than a token lives: the reconnection must not present the dead token for long.
    proxy.setMode("down");
    await eventually(() => d.client.state === "reconnecting", 5_000, "offline");
    await sleep(8_000);
    proxy.setMode("up");
    await eventually(() => d.client.state === "connected", 15_000, "back online");
    const second = await d.client.send(id, "back after expiry");
    await eventually(() => countOf(d, second.clientMsgId) === 1, 5_000, "send after the reconnection");
    assert.deepEqual(d.signedOut, []);
    assertInOrderOnce(d, id, "carol");
  });
});
