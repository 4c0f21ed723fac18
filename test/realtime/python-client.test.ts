// The protocol proved with a client that shares no code with ours: Debian's python3-socketio (a Socket.IO v5 client,
// as a native app's library would be), without a browser Origin. Handshake, send with ack, fan-out to a websocket
// and a long-polling device on two pods, delivered and read markers, and sync.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Message } from "@chat-gateway/protocol";
import { acceptConversation, createConversation, eventually, registerUser } from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";
import { PythonDevice } from "../helpers/python-device.js";

interface SendAnswer {
  ok: boolean;
  message: Message;
}

describe("a non-JavaScript Socket.IO client (python3-socketio)", () => {
  let cluster: Cluster;
  const devices: PythonDevice[] = [];
  const device = () => {
    const d = new PythonDevice();
    devices.push(d);
    return d;
  };
  before(async () => {
    cluster = await startGateways(2, { adapter: "sharded" });
  });
  after(async () => {
    await Promise.all(devices.map((d) => d.close()));
    await cluster.cleanup();
  });

  test("a bad token fails the handshake with `unauthorized`", async () => {
    const outcome = await device().connect(cluster.urls[0]!, "not-a-token", ["websocket"]);
    assert.equal(outcome.type, "connect_error");
    assert.equal(outcome.message, "unauthorized");
  });

  test("send with ack, fan-out over websocket and long polling on two pods, markers, sync", async () => {
    const [u0, u1] = cluster.urls as [string, string];
    const alice = await registerUser(u0);
    const bob = await registerUser(u1);
    const conversation = await createConversation(u0, alice.accessToken, { type: "direct", userId: bob.user.id });
    // Accepted: until then alice, who opened it, would see none of bob's markers (a message request).
    await acceptConversation(u1, bob.accessToken, conversation.id);

    const aliceWs = device();
    const bobWs = device();
    const bobPolling = device();
    assert.equal((await aliceWs.connect(u0, alice.accessToken, ["websocket"])).transport, "websocket");
    assert.equal((await bobWs.connect(u1, bob.accessToken, ["websocket"])).transport, "websocket");
    assert.equal((await bobPolling.connect(u0, bob.accessToken, ["polling"])).transport, "polling");
    // A raw client never syncs on connect as the SDK does: let the pods' room subscriptions settle first.
    await new Promise((r) => setTimeout(r, 300));

    const sent = await aliceWs.call<SendAnswer>("message:send", {
      conversationId: conversation.id,
      clientMsgId: "py-1",
      content: "hello from python",
    });
    assert.equal(sent.ok, true, JSON.stringify(sent));
    assert.equal(sent.message.seq, 1);
    const again = await aliceWs.call<SendAnswer>("message:send", {
      conversationId: conversation.id,
      clientMsgId: "py-1",
      content: "hello from python",
    });
    assert.equal(again.message.id, sent.message.id, "a retried clientMsgId answers the stored message");

    for (const d of [aliceWs, bobWs, bobPolling]) {
      await d.waitFor((l) => l.event === "message:new", "message:new");
      const ids = new Set(d.events("message:new").map((m) => (m as Message).id));
      assert.deepEqual([...ids], [sent.message.id], "every device gets the message, de-duplicated by id");
    }

    const bad = await bobWs.call<{ ok: boolean; error: { code: string } }>("message:read", {
      conversationId: conversation.id,
      seq: "one",
    });
    assert.deepEqual([bad.ok, bad.error.code], [false, "bad_request"]);
    assert.deepEqual(await bobPolling.call("message:delivered", { conversationId: conversation.id, seq: 1 }), {
      ok: true,
    });
    assert.deepEqual(await bobWs.call("message:read", { conversationId: conversation.id, seq: 1 }), { ok: true });
    await eventually(
      () =>
        aliceWs.events("conversation:read").some((e) => (e as { userId: string }).userId === bob.user.id) &&
        aliceWs.events("conversation:delivered").some((e) => (e as { userId: string }).userId === bob.user.id),
      10_000,
      "alice sees bob's delivered and read markers",
    );

    const later = device();
    await later.connect(u1, bob.accessToken, ["websocket"]);
    const fresh = await later.call<{ ok: boolean; conversations: { id: string }[]; messages: Message[] }>("sync", {
      cursors: {},
    });
    assert.equal(fresh.ok, true);
    assert.ok(fresh.conversations.some((c) => c.id === conversation.id));
    assert.deepEqual(
      fresh.messages.map((m) => m.id),
      [sent.message.id],
    );
    const upToDate = await later.call<{ ok: boolean; messages: Message[] }>("sync", {
      cursors: { [conversation.id]: 1 },
    });
    assert.deepEqual(upToDate.messages, []);
    assert.ok(
      devices.every((d) => !d.lines.some((l) => l.type === "disconnected")),
      "no device was disconnected",
    );
  });
});
