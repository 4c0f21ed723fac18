// Bad input of every kind gets its error code and leaves no partial state; a non-member can neither read nor send
// and learns nothing; repeated clientMsgIds store one message and deliver it by one id; the gateway keeps serving throughout.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Message } from "@chat-gateway/protocol";
import {
  api,
  collect,
  connectDevice,
  createConversation,
  type Device,
  registerUser,
  request,
  requestUnchecked,
} from "../helpers/clients.js";
import { type InProcessGateway, startInProcessGateway } from "../helpers/in-process.js";

describe("validation, authorisation and idempotency", () => {
  let gateway: InProcessGateway;
  let url: string;
  let alice: Awaited<ReturnType<typeof registerUser>>;
  let bob: Awaited<ReturnType<typeof registerUser>>;
  let mallory: Awaited<ReturnType<typeof registerUser>>;
  let conversationId: string;
  let aliceDevice: Device;
  let malloryDevice: Device;

  before(async () => {
    gateway = await startInProcessGateway({ env: { MESSAGE_MAX_CHARS: "10", SOCKET_MAX_PAYLOAD: "4096" } });
    url = gateway.url;
    [alice, bob, mallory] = await Promise.all([registerUser(url), registerUser(url), registerUser(url)]);
    conversationId = (await createConversation(url, alice.accessToken, { type: "direct", userId: bob.user.id })).id;
    aliceDevice = await connectDevice(url, alice.accessToken);
    malloryDevice = await connectDevice(url, mallory.accessToken);
  });
  after(async () => {
    aliceDevice.close();
    malloryDevice.close();
    await gateway.close();
  });

  test("malformed message:send payloads get bad_request with details, and nothing is stored", async () => {
    const cases: [string, unknown, string][] = [
      ["no payload", undefined, "bad_request"],
      ["a string", "hello", "bad_request"],
      ["missing clientMsgId", { conversationId, content: "hi" }, "bad_request"],
      ["empty clientMsgId", { conversationId, clientMsgId: "", content: "hi" }, "bad_request"],
      ["numeric content", { conversationId, clientMsgId: "x1", content: 42 }, "bad_request"],
      ["NUL in content", { conversationId, clientMsgId: "x2", content: "a\u0000b" }, "bad_request"],
      ["blank content", { conversationId, clientMsgId: "x3", content: "   " }, "bad_request"],
      ["array conversationId", { conversationId: [conversationId], clientMsgId: "x4", content: "hi" }, "bad_request"],
      ["content too long", { conversationId, clientMsgId: "x5", content: "12345678901" }, "payload_too_large"],
      ["unknown conversation", { conversationId: "not-a-uuid", clientMsgId: "x6", content: "hi" }, "not_found"],
      [
        "nonexistent conversation",
        { conversationId: "00000000-0000-4000-8000-000000000000", clientMsgId: "x7", content: "hi" },
        "not_found",
      ],
    ];
    for (const [name, payload, code] of cases) {
      const ack = await requestUnchecked(aliceDevice, "message:send", payload);
      assert.equal(ack.ok, false, name);
      assert.equal(ack.error?.code, code, name);
      if (code === "bad_request") assert.ok(Array.isArray(ack.error?.details), `${name}: details say which field`);
    }
    // Ten code points, some of them astral, fit exactly: length is counted in code points, not UTF-16 units.
    const emoji = await request(aliceDevice, "message:send", {
      conversationId,
      clientMsgId: "emoji",
      content: "😀😀😀😀😀😀😀😀😀😀",
    });
    assert.equal(emoji.ok, true);
    const history = await api<{ messages: Message[] }>(url, "GET", `/v1/conversations/${conversationId}/messages`, {
      token: alice.accessToken,
    });
    assert.deepEqual(
      history.body.messages.map((m) => m.clientMsgId),
      ["emoji"],
    );
  });

  test("other events validate too; unknown events and events without ack are ignored; the socket stays up", async () => {
    const bad: [string, unknown][] = [
      ["message:read", { conversationId, seq: -1 }],
      ["message:read", { conversationId, seq: 1.5 }],
      ["message:delivered", { conversationId }],
      ["typing", { conversationId, isTyping: "yes" }],
      ["sync", { cursors: [] }],
      ["sync", { cursors: {}, limit: 1001 }],
      ["sync", { cursors: { [conversationId]: "5" } }],
    ];
    for (const [event, payload] of bad) {
      const ack = await requestUnchecked(aliceDevice, event, payload);
      assert.equal(ack.error?.code, "bad_request", `${event} ${JSON.stringify(payload)}`);
    }
    const raw = aliceDevice as unknown as { emit(e: string, p?: unknown): void };
    raw.emit("no:such:event");
    raw.emit("message:send", {
      conversationId,
      clientMsgId: "no-ack",
      content: "x",
    });
    const ok = await request(aliceDevice, "sync", { cursors: {} });
    assert.equal(ok.ok, true);
    assert.ok(aliceDevice.connected);
  });

  test("a frame over the size limit closes only that socket; the gateway serves everyone else", async () => {
    const victim = await connectDevice(url, alice.accessToken);
    const closed = new Promise((resolve) => victim.once("disconnect", resolve));
    (victim as unknown as { emit(e: string, p: unknown): void }).emit("message:send", {
      conversationId,
      clientMsgId: "huge",
      content: "x".repeat(10_000),
    });
    await closed;
    const ack = await request(aliceDevice, "sync", { cursors: {} });
    assert.equal(ack.ok, true);
  });

  test("a non-member can neither read nor send, and learns nothing", async () => {
    const inbox = collect(malloryDevice, "message:new");
    const send = await request(malloryDevice, "message:send", {
      conversationId,
      clientMsgId: "intrude",
      content: "hi",
    });
    assert.equal(send.error?.code, "not_found");
    const nonexistent = "00000000-0000-4000-8000-000000000000";
    for (const id of [conversationId, nonexistent]) {
      // Exactly the same answers for "exists but not yours" and "does not exist".
      const get = await api(url, "GET", `/v1/conversations/${id}`, { token: mallory.accessToken });
      const history = await api(url, "GET", `/v1/conversations/${id}/messages`, { token: mallory.accessToken });
      const post = await api(url, "POST", `/v1/conversations/${id}/messages`, {
        token: mallory.accessToken,
        body: { clientMsgId: "m", content: "hi" },
      });
      const read = await api(url, "POST", `/v1/conversations/${id}/read`, {
        token: mallory.accessToken,
        body: { seq: 1 },
      });
      const join = await api(url, "POST", `/v1/conversations/${id}/members`, {
        token: mallory.accessToken,
        body: { userId: mallory.user.id },
      });
      for (const res of [get, history, post, read, join]) {
        assert.equal(res.status, 404);
        assert.deepEqual(res.body, { error: { code: "not_found", message: "conversation not found" } });
      }
      const marker = await request(malloryDevice, "message:read", { conversationId: id, seq: 1 });
      assert.equal(marker.error?.code, "not_found");
    }
    const sync = await request(malloryDevice, "sync", {
      cursors: { [conversationId]: 0 },
    });
    assert.deepEqual([sync.conversations, sync.messages], [[], []]);
    const list = await api<{ conversations: unknown[] }>(url, "GET", "/v1/conversations", {
      token: mallory.accessToken,
    });
    assert.deepEqual(list.body.conversations, []);
    await request(aliceDevice, "message:send", { conversationId, clientMsgId: "private", content: "secret" });
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(inbox, []);
  });

  test("a repeated clientMsgId stores one message and delivers only it (socket and HTTP alike)", async () => {
    const bobDevice = await connectDevice(url, bob.accessToken);
    const inbox = collect(bobDevice, "message:new");
    const payload = { conversationId, clientMsgId: "retry-me", content: "once" };
    const acks = await Promise.all([1, 2, 3].map(() => request(aliceDevice, "message:send", payload)));
    const viaHttp = await api<{ message: Message }>(url, "POST", `/v1/conversations/${conversationId}/messages`, {
      token: alice.accessToken,
      body: { clientMsgId: "retry-me", content: "once" },
    });
    assert.equal(viaHttp.status, 200, "a repeat over HTTP answers 200 with the stored message");
    const ids = new Set([...acks.map((a) => a.message!.id), viaHttp.body.message.id]);
    assert.equal(ids.size, 1);
    await new Promise((r) => setTimeout(r, 500));
    // Each repeat is fanned out again (its first fan-out may have been lost with a pod): one message, by id.
    const delivered = inbox.filter((m) => m.clientMsgId === "retry-me");
    assert.ok(delivered.length >= 1);
    assert.deepEqual(new Set(delivered.map((m) => m.id)), ids);
    const fresh = await api(url, "POST", `/v1/conversations/${conversationId}/messages`, {
      token: alice.accessToken,
      body: { clientMsgId: "fresh", content: "new" },
    });
    assert.equal(fresh.status, 201);
    bobDevice.close();
  });

  test("HTTP bad input: bad JSON, bad cursors and limits, oversized bodies, direct-conversation rules", async () => {
    const t = alice.accessToken;
    const badJson = await api(url, "POST", "/v1/conversations", { token: t, rawBody: "{nope" });
    assert.equal(badJson.status, 400);
    for (const q of ["limit=0", "limit=101", "limit=abc", "before=-1", "after=1.5", "before=1&after=2"]) {
      const res = await api<{ error: { code: string } }>(
        url,
        "GET",
        `/v1/conversations/${conversationId}/messages?${q}`,
        {
          token: t,
        },
      );
      assert.equal(res.status, 400, q);
      assert.equal(res.body.error.code, "bad_request", q);
    }
    const cursor = await api(url, "GET", "/v1/conversations?cursor=garbage", { token: t });
    assert.equal(cursor.status, 400);
    const big = await api(url, "POST", `/v1/conversations/${conversationId}/messages`, {
      token: t,
      rawBody: JSON.stringify({ clientMsgId: "big", content: "x".repeat(100_000) }),
    });
    assert.equal(big.status, 413);
    const addToDirect = await api(url, "POST", `/v1/conversations/${conversationId}/members`, {
      token: t,
      body: { userId: mallory.user.id },
    });
    assert.equal(addToDirect.status, 403);
    const extra = await api(url, "POST", "/v1/conversations", {
      token: t,
      body: { type: "direct", userId: bob.user.id, admin: true },
    });
    assert.equal(extra.status, 400, "unknown fields are refused");
    const again = await api<{ conversation: { id: string } }>(url, "POST", "/v1/conversations", {
      token: bob.accessToken,
      body: { type: "direct", userId: alice.user.id },
    });
    assert.equal(again.status, 200, "one direct conversation per pair");
    assert.equal(again.body.conversation.id, conversationId);
  });
});
