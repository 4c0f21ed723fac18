// Message requests across two pods: a direct conversation opened by someone the recipient never answered delivers
// the requester's messages, but no presence, typing or read/delivered markers of the recipient flow back to the
// requester, live or in conversation objects, until the recipient replies or accepts. And presence watches end when
// two people stop sharing a conversation.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { AuthResult, Conversation } from "@chat-gateway/protocol";
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

describe("message requests (two pods, sharded adapter)", () => {
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
  const send = async (d: Device, conversationId: string, content: string) => {
    const ack = await request(d, "message:send", {
      conversationId,
      clientMsgId: randomUUID(),
      content,
    });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    return ack.message;
  };
  const view = async (pod: number, token: string, id: string) => {
    const res = await api<{ conversation: Conversation }>(cluster.urls[pod]!, "GET", `/v1/conversations/${id}`, {
      token,
    });
    assert.equal(res.status, 200);
    return res.body.conversation;
  };
  const accept = (pod: number, token: string, id: string) =>
    api<{ conversation: Conversation; error?: { code: string } }>(
      cluster.urls[pod]!,
      "POST",
      `/v1/conversations/${id}/accept`,
      { token },
    );

  test("nothing of the recipient reaches the requester until accepted; everything does after", async () => {
    const [alice, bob] = await Promise.all([registerUser(cluster.urls[0]!), registerUser(cluster.urls[1]!)]);
    const created = await api<{ conversation: Conversation }>(cluster.urls[0]!, "POST", "/v1/conversations", {
      token: alice.accessToken,
      body: { type: "direct", userId: bob.user.id },
    });
    assert.equal(created.status, 201);
    const direct = created.body.conversation;
    assert.deepEqual(direct.request, { state: "pending", requestedBy: alice.user.id });
    assert.deepEqual((await view(1, bob.accessToken, direct.id)).request, direct.request, "the recipient sees it too");

    const a = await connect(0, alice.accessToken);
    const b = await connect(1, bob.accessToken);
    const toAlice = {
      typing: collect(a, "typing"),
      read: collect(a, "conversation:read"),
      delivered: collect(a, "conversation:delivered"),
      markers: collect(a, "conversation:markers"),
      presence: collect(a, "presence"),
    };

    // Presence: the requester gets bob left out (as for any stranger); the recipient may watch the requester.
    const watched = await request(a, "presence:subscribe", { userIds: [bob.user.id] });
    assert.equal(watched.ok, true);
    assert.deepEqual(watched.presence, {}, "no presence of the recipient for the requester");
    const back = await request(b, "presence:subscribe", { userIds: [alice.user.id] });
    assert.equal(back.presence[alice.user.id]?.online, true, "the recipient sees the requester");

    // The requester's message is delivered and stored.
    const inbox = collect(b, "message:new");
    const first = await send(a, direct.id, "hello, may I?");
    await eventually(() => inbox.some((m) => m.seq === first.seq), 10_000, "the request delivered");

    // The recipient's markers and typing: their own devices hear of them, the requester does not.
    const ownRead = waitForEvent(b, "conversation:read", (e) => e.userId === bob.user.id);
    assert.equal((await request(b, "message:delivered", { conversationId: direct.id, seq: 1 })).ok, true);
    assert.equal((await request(b, "message:read", { conversationId: direct.id, seq: 1 })).ok, true);
    await ownRead;
    assert.equal((await request(b, "typing", { conversationId: direct.id, isTyping: true })).ok, true);
    // The requester's typing still reaches the recipient.
    const requesterTyping = waitForEvent(b, "typing", (e) => e.userId === alice.user.id);
    assert.equal((await request(a, "typing", { conversationId: direct.id, isTyping: true })).ok, true);
    await requesterTyping;
    await sleep(QUIET_MS);
    assert.deepEqual(toAlice.typing, [], "no typing of the recipient");
    assert.deepEqual(
      [...toAlice.read, ...toAlice.delivered].filter((e) => e.userId === bob.user.id),
      [],
      "no receipts of the recipient",
    );
    assert.deepEqual(toAlice.markers, []);

    // Nor in conversation objects: GET, list and sync show the recipient's markers as 0 to the requester only.
    const bobFor = (c: Conversation) => c.members.find((m) => m.id === bob.user.id)!;
    const aliceView = await view(0, alice.accessToken, direct.id);
    assert.deepEqual([bobFor(aliceView).readSeq, bobFor(aliceView).deliveredSeq], [0, 0]);
    const listed = await api<{ conversations: Conversation[] }>(cluster.urls[0]!, "GET", "/v1/conversations", {
      token: alice.accessToken,
    });
    assert.equal(bobFor(listed.body.conversations.find((c) => c.id === direct.id)!).readSeq, 0);
    const synced = await request(a, "sync", { cursors: {} });
    assert.equal(bobFor(synced.conversations.find((c) => c.id === direct.id)!).readSeq, 0);
    assert.equal(bobFor(await view(1, bob.accessToken, direct.id)).readSeq, 1, "the recipient sees their own");

    // Only the recipient accepts; outsiders see nothing.
    const outsider = await registerUser(cluster.urls[0]!);
    assert.equal((await accept(0, alice.accessToken, direct.id)).body.error?.code, "forbidden");
    assert.equal((await accept(0, outsider.accessToken, direct.id)).status, 404);
    assert.equal((await accept(0, outsider.accessToken, "not-a-uuid")).status, 404);

    const updated = waitForEvent(a, "conversation:updated", (e) => e.conversation.request?.state === "accepted");
    const accepted = await accept(1, bob.accessToken, direct.id);
    assert.equal(accepted.status, 200);
    assert.deepEqual(accepted.body.conversation.request, { state: "accepted", requestedBy: alice.user.id });
    assert.equal(bobFor((await updated).conversation).readSeq, 1, "the update shows the markers now");
    assert.equal((await accept(1, bob.accessToken, direct.id)).status, 200, "accepting again is fine");

    // After: presence, typing and receipts of the recipient reach the requester.
    const now = await request(a, "presence:subscribe", { userIds: [bob.user.id] });
    assert.equal(now.presence[bob.user.id]?.online, true);
    const typing = waitForEvent(a, "typing", (e) => e.userId === bob.user.id && e.isTyping === false);
    assert.equal((await request(b, "typing", { conversationId: direct.id, isTyping: false })).ok, true);
    await typing;
    const second = await send(a, direct.id, "thanks");
    const read = waitForEvent(a, "conversation:read", (e) => e.userId === bob.user.id && e.seq === second.seq);
    assert.equal((await request(b, "message:read", { conversationId: direct.id, seq: second.seq })).ok, true);
    await read;
    assert.equal(bobFor(await view(0, alice.accessToken, direct.id)).readSeq, second.seq);
  });

  test("the recipient's reply accepts the request", async () => {
    const [carol, dave] = await Promise.all([registerUser(cluster.urls[0]!), registerUser(cluster.urls[1]!)]);
    const direct = await createConversation(cluster.urls[0]!, carol.accessToken, {
      type: "direct",
      userId: dave.user.id,
    });
    const c = await connect(0, carol.accessToken);
    const d = await connect(1, dave.accessToken);
    await send(c, direct.id, "hi dave");
    assert.deepEqual((await request(c, "presence:subscribe", { userIds: [dave.user.id] })).presence, {});
    // The requester writing again does not accept it.
    await send(c, direct.id, "are you there?");
    assert.equal((await view(0, carol.accessToken, direct.id)).request?.state, "pending");

    const updated = waitForEvent(c, "conversation:updated", (e) => e.conversation.request?.state === "accepted");
    await send(d, direct.id, "hi carol");
    await updated;
    const seen = await request(c, "presence:subscribe", { userIds: [dave.user.id] });
    assert.equal(seen.presence[dave.user.id]?.online, true);
    // A group is never a request; accepting one is forbidden.
    const group = await createConversation(cluster.urls[0]!, carol.accessToken, {
      type: "group",
      title: "g",
      memberIds: [dave.user.id],
    });
    assert.equal((await view(0, carol.accessToken, group.id)).request, null);
    assert.equal((await accept(1, dave.accessToken, group.id)).body.error?.code, "forbidden");
  });

  test("leaving the last shared conversation ends presence watches between the two, on every pod", async () => {
    const [erin, frank, gina, hank] = (await Promise.all([0, 1, 1, 0].map((p) => registerUser(cluster.urls[p]!)))) as [
      AuthResult,
      AuthResult,
      AuthResult,
      AuthResult,
    ];
    const group = await createConversation(cluster.urls[0]!, erin.accessToken, {
      type: "group",
      title: "shared",
      memberIds: [frank.user.id, gina.user.id, hank.user.id],
    });
    // Frank also opened a request to Gina, which she never answered: once the group is gone between them, it does
    // not let him watch her.
    await createConversation(cluster.urls[1]!, frank.accessToken, { type: "direct", userId: gina.user.id });
    const e = await connect(0, erin.accessToken);
    const f = await connect(1, frank.accessToken);
    const atErin = collect(e, "presence");
    const atFrank = collect(f, "presence");
    const erinWatches = await request(e, "presence:subscribe", {
      userIds: [frank.user.id, hank.user.id],
    });
    assert.deepEqual(Object.keys(erinWatches.presence).sort(), [frank.user.id, hank.user.id].sort());
    const frankWatches = await request(f, "presence:subscribe", { userIds: [gina.user.id] });
    assert.deepEqual(frankWatches.presence[gina.user.id], { online: false, lastSeenAt: null }, "via the group");

    const left = await api(cluster.urls[1]!, "DELETE", `/v1/conversations/${group.id}/members/${frank.user.id}`, {
      token: frank.accessToken,
    });
    assert.equal(left.status, 204);
    // What came while they still shared the group (Frank's own coming online may reach Erin's new watch only now, from
    // the other pod) is not the question; from here on nothing of the other may come.
    atErin.length = 0;
    atFrank.length = 0;

    // Gina comes online: Frank (who left, and whose request she never answered) is not told.
    await connect(0, gina.accessToken);
    // Frank goes offline: Erin, his former co-member, is not told. Hank, still in the group, coming online is.
    f.close();
    await connect(1, hank.accessToken);
    await waitForEvent(e, "presence", (ev) => ev.userId === hank.user.id && ev.online);
    await sleep(QUIET_MS);
    assert.deepEqual(
      atErin.filter((ev) => ev.userId === frank.user.id),
      [],
      "no presence of a former co-member",
    );
    assert.deepEqual(atFrank, [], "no presence for the one who left either");
    // New subscriptions follow the same rule.
    const again = await request(e, "presence:subscribe", { userIds: [frank.user.id] });
    assert.deepEqual(again.presence, {});
  });
});

// With RECEIPTS_PER_MEMBER_MAX_MEMBERS=0 every conversation, direct ones included, announces markers through the
// coalesced `conversation:markers`: the requester must get none of the recipient's there either.
describe("message requests and coalesced receipts (conversation:markers)", () => {
  let cluster: Cluster;
  const devices: Device[] = [];
  before(async () => {
    cluster = await startGateways(1, {
      adapter: "sharded",
      env: { RECEIPTS_PER_MEMBER_MAX_MEMBERS: "0", RECEIPTS_FLUSH_MS: "50" },
    });
  });
  after(async () => {
    for (const d of devices) d.close();
    await cluster?.cleanup();
  });

  test("the requester's markers events carry only their own markers until accepted", async () => {
    const url = cluster.urls[0]!;
    const [alice, bob] = await Promise.all([registerUser(url), registerUser(url)]);
    const direct = await createConversation(url, alice.accessToken, { type: "direct", userId: bob.user.id });
    const [a1, a2, b] = await Promise.all([
      connectDevice(url, alice.accessToken),
      connectDevice(url, alice.accessToken),
      connectDevice(url, bob.accessToken),
    ]);
    devices.push(a1, a2, b);
    const atAlice = collect(a2, "conversation:markers");
    const sent = await request(a1, "message:send", {
      conversationId: direct.id,
      clientMsgId: randomUUID(),
      content: "hi",
    });
    assert.equal(sent.ok, true);
    const bobHearsHimself = waitForEvent(b, "conversation:markers", (e) => "read" in e && bob.user.id in e.read);
    assert.equal((await request(b, "message:read", { conversationId: direct.id, seq: 1 })).ok, true);
    await bobHearsHimself;
    await sleep(QUIET_MS);
    assert.ok(
      atAlice.every((e) => "read" in e && !(bob.user.id in e.read) && !(bob.user.id in e.delivered)),
      JSON.stringify(atAlice),
    );

    await acceptConversation(url, bob.accessToken, direct.id);
    const second = await request(a1, "message:send", {
      conversationId: direct.id,
      clientMsgId: randomUUID(),
      content: "thanks",
    });
    const aliceHearsBob = waitForEvent(a2, "conversation:markers", (e) => "read" in e && e.read[bob.user.id] === 2);
    assert.equal((await request(b, "message:read", { conversationId: direct.id, seq: second.message.seq })).ok, true);
    await aliceHearsBob;
  });
});
