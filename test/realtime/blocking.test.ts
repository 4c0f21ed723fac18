// Blocking across two pods: the blocked user cannot open or write into a direct conversation with the blocker
// (`forbidden`), neither sees the other's presence or typing (existing watches end too), group messages still flow
// unchanged; unblocking restores all of it. The push side is in test/push/consent-push.test.ts.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { AuthResult, Message, PublicUser } from "@chat-gateway/protocol";
import {
  acceptConversation,
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

/** Long enough for an event that is coming to arrive across pods; used only to check that none does. */
const QUIET_MS = 600;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("blocking (two pods, sharded adapter)", () => {
  let cluster: Cluster;
  const devices: Device[] = [];
  before(async () => {
    cluster = await startGateways(2, { adapter: "sharded" });
  });
  after(async () => {
    for (const d of devices) d.close();
    await cluster?.cleanup();
  });

  const connect = async (pod: number, token: string) => {
    const d = await connectDevice(cluster.urls[pod]!, token);
    devices.push(d);
    return d;
  };
  const send = (d: Device, conversationId: string, content: string) =>
    request(d, "message:send", { conversationId, clientMsgId: randomUUID(), content });
  const block = (method: "PUT" | "DELETE", who: AuthResult, id: string) =>
    api<{ error?: { code: string } }>(cluster.urls[0]!, method, `/v1/users/${id}/block`, { token: who.accessToken });
  const blocks = async (who: AuthResult) =>
    (await api<{ users: PublicUser[] }>(cluster.urls[1]!, "GET", "/v1/users/me/blocks", { token: who.accessToken }))
      .body.users;

  test("the endpoints: idempotent, yourself is bad_request, unknown users not_found, a list of your own", async () => {
    const [alice, bob] = await Promise.all([registerUser(cluster.urls[0]!), registerUser(cluster.urls[1]!)]);
    assert.equal((await block("PUT", alice, bob.user.id)).status, 204);
    assert.equal((await block("PUT", alice, bob.user.id)).status, 204, "twice is fine");
    assert.deepEqual(await blocks(alice), [bob.user]);
    assert.deepEqual(await blocks(bob), [], "only your own blocks");
    assert.equal((await block("PUT", alice, alice.user.id)).body.error?.code, "bad_request");
    assert.equal((await block("PUT", alice, randomUUID())).status, 404);
    assert.equal((await block("PUT", alice, "not-a-uuid")).status, 404);
    assert.equal((await block("DELETE", alice, randomUUID())).status, 404);
    const anonymous = await api(cluster.urls[0]!, "PUT", `/v1/users/${bob.user.id}/block`);
    assert.equal(anonymous.status, 401);
    assert.equal((await block("DELETE", alice, bob.user.id)).status, 204);
    assert.equal((await block("DELETE", alice, bob.user.id)).status, 204, "twice is fine");
    assert.deepEqual(await blocks(alice), []);
  });

  test("blocked: no direct conversation or send to the blocker, no presence or typing either way; unblock restores", async () => {
    const [alice, bob, carol] = (await Promise.all([0, 1, 0].map((p) => registerUser(cluster.urls[p]!)))) as [
      AuthResult,
      AuthResult,
      AuthResult,
    ];
    const direct = await createConversation(cluster.urls[1]!, bob.accessToken, {
      type: "direct",
      userId: alice.user.id,
    });
    await acceptConversation(cluster.urls[0]!, alice.accessToken, direct.id);
    const group = await createConversation(cluster.urls[0]!, carol.accessToken, {
      type: "group",
      title: "three",
      memberIds: [alice.user.id, bob.user.id],
    });
    const a = await connect(0, alice.accessToken);
    const b = await connect(1, bob.accessToken);
    const c = await connect(0, carol.accessToken);
    // Both watch each other and carol; the watches work before the block.
    for (const [d, other] of [
      [a, bob],
      [b, alice],
    ] as const) {
      const answer = await request(d, "presence:subscribe", {
        userIds: [other.user.id, carol.user.id],
      });
      assert.equal(answer.presence[other.user.id]?.online, true);
    }
    const presenceAt = { alice: collect(a, "presence"), bob: collect(b, "presence") };
    const typingAt = { alice: collect(a, "typing"), bob: collect(b, "typing"), carol: collect(c, "typing") };

    assert.equal((await block("PUT", alice, bob.user.id)).status, 204);

    // Direct: bob can neither open nor write; his message is not stored.
    const sent = await send(b, direct.id, "let me explain");
    assert.equal(sent.error?.code, "forbidden", JSON.stringify(sent));
    const overHttp = await api<{ error: { code: string } }>(
      cluster.urls[1]!,
      "POST",
      `/v1/conversations/${direct.id}/messages`,
      { token: bob.accessToken, body: { clientMsgId: randomUUID(), content: "please" } },
    );
    assert.equal(overHttp.status, 403);
    const reopen = await api<{ error: { code: string } }>(cluster.urls[1]!, "POST", "/v1/conversations", {
      token: bob.accessToken,
      body: { type: "direct", userId: alice.user.id },
    });
    assert.equal(reopen.body.error.code, "forbidden");
    const history = await api<{ messages: Message[] }>(
      cluster.urls[0]!,
      "GET",
      `/v1/conversations/${direct.id}/messages`,
      { token: alice.accessToken },
    );
    assert.deepEqual(history.body.messages, [], "nothing stored");
    // A stranger to the conversation still gets not_found, not forbidden.
    assert.equal((await send(c, direct.id, "hi")).error?.code, "not_found");

    // Group messages still flow both ways, unchanged.
    const inboxA = collect(a, "message:new");
    const fromBob = await send(b, group.id, "hello all");
    assert.equal(fromBob.ok, true);
    await eventually(() => inboxA.some((m) => m.id === fromBob.message!.id), 10_000, "bob's group message at alice");
    assert.deepEqual(
      inboxA.find((m) => m.id === fromBob.message!.id),
      fromBob.message,
    );
    assert.equal((await send(a, group.id, "hi")).ok, true);

    // Presence: new subscriptions leave the other out, both ways.
    for (const [d, other] of [
      [a, bob],
      [b, alice],
    ] as const) {
      const answer = await request(d, "presence:subscribe", { userIds: [other.user.id] });
      assert.deepEqual(answer.presence, {});
    }
    // Typing in the group: carol hears both; they do not hear each other.
    const carolHearsBoth = eventually(
      () => new Set(typingAt.carol.map((t) => t.userId)).size === 2,
      10_000,
      "carol hears both typing",
    );
    assert.equal((await request(a, "typing", { conversationId: group.id, isTyping: true })).ok, true);
    assert.equal((await request(b, "typing", { conversationId: group.id, isTyping: true })).ok, true);
    await carolHearsBoth;
    // Existing watches ended with the block: bob going offline is not told to alice (carol's change, published
    // after it, is the barrier), nor alice's second device coming and going to bob.
    const a2 = await connect(1, alice.accessToken);
    a2.close();
    b.close();
    c.close();
    await waitForEvent(a, "presence", (e) => e.userId === carol.user.id && !e.online);
    await sleep(QUIET_MS);
    assert.deepEqual(
      presenceAt.alice.filter((e) => e.userId === bob.user.id),
      [],
    );
    assert.deepEqual(typingAt.alice, []);
    assert.deepEqual(typingAt.bob, []);
    assert.deepEqual(
      presenceAt.bob.filter((e) => e.userId === alice.user.id),
      [],
    );

    // Unblocking restores direct sends, presence and typing.
    assert.equal((await block("DELETE", alice, bob.user.id)).status, 204);
    const b2 = await connect(1, bob.accessToken);
    assert.equal((await send(b2, direct.id, "thanks")).ok, true);
    const watched = await request(a, "presence:subscribe", { userIds: [bob.user.id] });
    assert.equal(watched.presence[bob.user.id]?.online, true);
    const typing = waitForEvent(a, "typing", (e) => e.userId === bob.user.id);
    assert.equal((await request(b2, "typing", { conversationId: direct.id, isTyping: true })).ok, true);
    await typing;
  });

  test("the blocker may still write to the blocked user", async () => {
    const [alice, bob] = await Promise.all([registerUser(cluster.urls[0]!), registerUser(cluster.urls[1]!)]);
    const direct = await createConversation(cluster.urls[0]!, alice.accessToken, {
      type: "direct",
      userId: bob.user.id,
    });
    assert.equal((await block("PUT", alice, bob.user.id)).status, 204);
    const a = await connect(0, alice.accessToken);
    assert.equal((await send(a, direct.id, "one last thing")).ok, true);
  });
});
