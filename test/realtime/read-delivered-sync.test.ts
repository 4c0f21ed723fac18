// Read and delivery markers reach every device of every member across pods, unread counts agree on every device,
// markers only move forward, and `sync` answers exactly what each device is missing, page by page, leaking nothing.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { MarkerEvent, AuthResult, Conversation, Message } from "@chat-gateway/protocol";
import {
  api,
  collect,
  connectDevice,
  createConversation,
  type Device,
  eventually,
  registerUser,
  request,
} from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("read/delivered markers and sync across pods", () => {
  let cluster: Cluster;
  const devices: Device[] = [];
  before(async () => {
    cluster = await startGateways(3, { adapter: "sharded" });
  });
  after(async () => {
    for (const d of devices) d.close();
    await cluster.cleanup();
  });

  const connect = async (pod: number, user: AuthResult) => {
    const device = await connectDevice(cluster.urls[pod]!, user.accessToken);
    devices.push(device);
    return device;
  };
  const unreadOf = async (user: AuthResult, conversationId: string, pod = 0) => {
    const res = await api<{ conversations: Conversation[] }>(cluster.urls[pod]!, "GET", "/v1/conversations", {
      token: user.accessToken,
    });
    assert.equal(res.status, 200);
    return res.body.conversations.find((c) => c.id === conversationId)?.unreadCount;
  };
  const send = async (device: Device, conversationId: string, tag: string) => {
    const ack = await request(device, "message:send", {
      conversationId,
      clientMsgId: tag,
      content: tag,
    });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    return ack.message;
  };

  test("markers reach every device of every member, only move forward, and unread counts follow", async () => {
    const [alice, bob, carol, outsider] = await Promise.all([0, 1, 2, 0].map((p) => registerUser(cluster.urls[p]!)));
    const group = await createConversation(cluster.urls[0]!, alice!.accessToken, {
      type: "group",
      title: "markers",
      memberIds: [bob!.user.id, carol!.user.id],
    });
    // alice on pods 0 and 1, bob on 1 and 2, carol on 2.
    const all = [
      await connect(0, alice!),
      await connect(1, alice!),
      await connect(1, bob!),
      await connect(2, bob!),
      await connect(2, carol!),
    ];
    const [a1, a2, b1, , c1] = all as [Device, Device, Device, Device, Device];
    const reads = all.map((d) => collect(d, "conversation:read"));
    const delivered = all.map((d) => collect(d, "conversation:delivered"));
    const inboxes = all.map((d) => collect(d, "message:new"));

    for (let i = 1; i <= 3; i++) await send(b1, group.id, `b${i}`);
    await eventually(() => inboxes.every((inbox) => inbox.length === 3), 10_000, "three messages everywhere");
    assert.equal(await unreadOf(alice!, group.id, 0), 3);
    assert.equal(await unreadOf(alice!, group.id, 1), 3);
    assert.equal(await unreadOf(bob!, group.id, 2), 0, "own messages are never unread");
    assert.equal(await unreadOf(carol!, group.id, 2), 3);

    // alice reads up to 2 on one device: every device of every member hears it, her other device included.
    assert.equal((await request(a1, "message:read", { conversationId: group.id, seq: 2 })).ok, true);
    const aliceRead2: MarkerEvent = { conversationId: group.id, userId: alice!.user.id, seq: 2 };
    await eventually(() => reads.every((r) => r.length === 1), 10_000, "read event on every device");
    for (const r of reads) assert.deepEqual(r, [aliceRead2]);
    assert.equal(await unreadOf(alice!, group.id, 1), 1);
    assert.equal(await unreadOf(alice!, group.id, 2), 1);
    assert.equal(await unreadOf(carol!, group.id, 0), 3, "alice's reading is not carol's");

    // A lower seq from her other device: ok, and nothing moves or is announced.
    assert.equal((await request(a2, "message:read", { conversationId: group.id, seq: 1 })).ok, true);
    assert.equal((await request(a2, "message:read", { conversationId: group.id, seq: 2 })).ok, true);
    // Past the end is clamped to the last message.
    assert.equal((await request(a2, "message:read", { conversationId: group.id, seq: 99 })).ok, true);
    await eventually(() => reads.every((r) => r.length === 2), 10_000, "second read event");
    await sleep(300);
    for (const r of reads) assert.deepEqual(r, [aliceRead2, { ...aliceRead2, seq: 3 }]);
    assert.equal(await unreadOf(alice!, group.id, 0), 0);

    // Delivery markers: the same fan-out and the same forward-only rule.
    assert.equal((await request(c1, "message:delivered", { conversationId: group.id, seq: 3 })).ok, true);
    assert.equal((await request(c1, "message:delivered", { conversationId: group.id, seq: 2 })).ok, true);
    await eventually(() => delivered.every((d) => d.length === 1), 10_000, "delivered event on every device");
    await sleep(300);
    for (const d of delivered) assert.deepEqual(d, [{ conversationId: group.id, userId: carol!.user.id, seq: 3 }]);
    assert.equal(await unreadOf(carol!, group.id, 1), 3, "delivered is not read");

    // Sending moves the sender's own read marker: carol's unread goes to 0, the others gain one.
    await send(c1, group.id, "c1");
    assert.equal(await unreadOf(carol!, group.id, 2), 0);
    assert.equal(await unreadOf(alice!, group.id, 1), 1);
    assert.equal(await unreadOf(bob!, group.id, 0), 1);

    // Someone outside the conversation can neither move a marker nor learn anything.
    const stranger = await connect(0, outsider!);
    const denied = await request(stranger, "message:read", { conversationId: group.id, seq: 1 });
    assert.equal(denied.ok, false);
    assert.equal(denied.error?.code, "not_found");
    await sleep(200);
    assert.ok(reads.every((r) => r.length === 2));
  });

  test("sync returns what each conversation has after its cursor plus unlisted ones, and ignores foreign cursors", async () => {
    const [dave, erin, frank] = await Promise.all([0, 1, 2].map((p) => registerUser(cluster.urls[p]!)));
    const withErin = await createConversation(cluster.urls[0]!, dave!.accessToken, {
      type: "direct",
      userId: erin!.user.id,
    });
    const withFrank = await createConversation(cluster.urls[0]!, dave!.accessToken, {
      type: "direct",
      userId: frank!.user.id,
    });
    const quiet = await createConversation(cluster.urls[0]!, dave!.accessToken, {
      type: "group",
      title: "quiet",
      memberIds: [erin!.user.id],
    });
    const foreign = await createConversation(cluster.urls[1]!, erin!.accessToken, {
      type: "direct",
      userId: frank!.user.id,
    });
    const erinDevice = await connect(1, erin!);
    const frankDevice = await connect(2, frank!);
    for (let i = 1; i <= 5; i++) await send(erinDevice, withErin.id, `e${i}`);
    for (let i = 1; i <= 3; i++) await send(frankDevice, withFrank.id, `f${i}`);
    for (let i = 1; i <= 4; i++) await send(frankDevice, foreign.id, `x${i}`);

    const daveDevice = await connect(2, dave!);
    const answer = await request(daveDevice, "sync", {
      cursors: { [withErin.id]: 2, [foreign.id]: 0 },
    });
    assert.equal(answer.ok, true);
    assert.deepEqual(answer.conversations.map((c) => c.id).sort(), [withErin.id, withFrank.id, quiet.id].sort());
    const seqsOf = (messages: Message[], id: string) =>
      messages.filter((m) => m.conversationId === id).map((m) => m.seq);
    assert.deepEqual(seqsOf(answer.messages, withErin.id), [3, 4, 5]);
    assert.deepEqual(seqsOf(answer.messages, withFrank.id), [1, 2, 3]);
    assert.equal(answer.messages.length, 6, "nothing from the foreign conversation");
    assert.equal(answer.hasMore, false);

    // Up to date everywhere: nothing to send back.
    const current = await request(daveDevice, "sync", {
      cursors: { [withErin.id]: 5, [withFrank.id]: 3, [quiet.id]: 0, [foreign.id]: 1 },
    });
    assert.deepEqual(current.conversations, []);
    assert.deepEqual(current.messages, []);
    assert.equal(current.hasMore, false);

    // Paging with a small limit reaches the end with every message exactly once, in order per conversation.
    const cursors: Record<string, number> = { [foreign.id]: 0 };
    const received = new Map<string, number[]>();
    let calls = 0;
    for (;;) {
      const page = await request(daveDevice, "sync", { cursors, limit: 2 });
      assert.equal(page.ok, true);
      assert.ok(page.messages.length <= 2);
      assert.ok(++calls <= 20, "paging ends");
      for (const c of page.conversations) cursors[c.id] ??= 0;
      for (const m of page.messages) {
        assert.notEqual(m.conversationId, foreign.id);
        assert.equal(m.seq, cursors[m.conversationId]! + 1, "no gap, no duplicate");
        cursors[m.conversationId] = m.seq;
        received.set(m.conversationId, [...(received.get(m.conversationId) ?? []), m.seq]);
      }
      if (!page.hasMore) break;
    }
    assert.ok(calls >= 4, `8 messages in pages of 2 took ${calls} calls`);
    assert.deepEqual(received.get(withErin.id), [1, 2, 3, 4, 5]);
    assert.deepEqual(received.get(withFrank.id), [1, 2, 3]);
    assert.equal(received.has(foreign.id), false);
    assert.equal(received.has(quiet.id), false);
  });
});
