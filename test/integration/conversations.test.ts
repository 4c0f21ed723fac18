// Conversations: one direct conversation per pair under concurrent creation, groups and their membership events,
// and the list's order and paging.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Conversation } from "@chat-gateway/protocol";
import { api, collect, connectDevice, createConversation, registerUser, request } from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";

describe("conversations", () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startGateways(2, { adapter: "sharded", env: { GROUP_MAX_MEMBERS: "4" } });
  });
  after(() => cluster.cleanup());

  test("concurrent direct creation from both sides and both pods yields one conversation", async () => {
    const [u0, u1] = cluster.urls as [string, string];
    const [a, b] = await Promise.all([registerUser(u0), registerUser(u1)]);
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        api<{ conversation: Conversation }>(i % 2 ? u0 : u1, "POST", "/v1/conversations", {
          token: i % 2 ? a.accessToken : b.accessToken,
          body: { type: "direct", userId: i % 2 ? b.user.id : a.user.id },
        }),
      ),
    );
    assert.equal(new Set(answers.map((r) => r.body.conversation.id)).size, 1);
    assert.equal(answers.filter((r) => r.status === 201).length, 1, "exactly one creation");
    const conversation = answers[0]!.body.conversation;
    assert.equal(conversation.type, "direct");
    assert.deepEqual(conversation.members.map((m) => m.role).sort(), ["member", "member"]);
  });

  test("groups: creator is admin, members are told of changes, size is capped, leaving works", async () => {
    const [u0, u1] = cluster.urls as [string, string];
    const [owner, m1, m2, m3, m4] = await Promise.all([0, 1, 2, 3, 4].map((i) => registerUser(cluster.urls[i % 2]!)));
    const m1Device = await connectDevice(u1, m1!.accessToken);
    const updates = collect(m1Device, "conversation:updated");
    const group = await api<{ conversation: Conversation }>(u0, "POST", "/v1/conversations", {
      token: owner!.accessToken,
      body: { type: "group", title: "Team", memberIds: [m1!.user.id, m2!.user.id] },
    });
    assert.equal(group.status, 201);
    const id = group.body.conversation.id;
    assert.equal(group.body.conversation.members.find((m) => m.id === owner!.user.id)?.role, "admin");

    const byMember = await api(u1, "POST", `/v1/conversations/${id}/members`, {
      token: m1!.accessToken,
      body: { userId: m3!.user.id },
    });
    assert.equal(byMember.status, 403, "only admins may add");
    const added = await api(u0, "POST", `/v1/conversations/${id}/members`, {
      token: owner!.accessToken,
      body: { userId: m3!.user.id },
    });
    assert.equal(added.status, 201, "admins may add");
    const full = await api(u0, "POST", `/v1/conversations/${id}/members`, {
      token: owner!.accessToken,
      body: { userId: m4!.user.id },
    });
    assert.equal(full.status, 403, "GROUP_MAX_MEMBERS=4");
    const renamed = await api<{ conversation: Conversation }>(u0, "PATCH", `/v1/conversations/${id}`, {
      token: owner!.accessToken,
      body: { title: "Team 2" },
    });
    assert.equal(renamed.body.conversation.title, "Team 2");
    const removeOther = await api(u0, "DELETE", `/v1/conversations/${id}/members/${m1!.user.id}`, {
      token: m2!.accessToken,
    });
    assert.equal(removeOther.status, 403, "members may remove only themselves");
    const leave = await api(u1, "DELETE", `/v1/conversations/${id}/members/${m1!.user.id}`, { token: m1!.accessToken });
    assert.equal(leave.status, 204);
    assert.equal((await api(u1, "GET", `/v1/conversations/${id}`, { token: m1!.accessToken })).status, 404);

    await new Promise((r) => setTimeout(r, 300));
    const titles = updates.map((u) => u.conversation.title);
    assert.deepEqual(titles.slice(0, 3), ["Team", "Team", "Team 2"], "created, member added, renamed");
    const last = updates.at(-1)!.conversation;
    assert.ok(!last.members.some((m) => m.id === m1!.user.id), "the leaver learns it left");
    m1Device.close();
  });

  test("the list is most recent activity first, pages with a cursor, and counts unread", async () => {
    const url = cluster.urls[0]!;
    const me = await registerUser(url);
    const others = await Promise.all([1, 2, 3].map(() => registerUser(url)));
    const convs = [];
    for (const o of others)
      convs.push(await createConversation(url, me.accessToken, { type: "direct", userId: o.user.id }));
    // Activity: the first conversation gets a message last, so it comes first.
    const device = await connectDevice(url, others[0]!.accessToken);
    await request(device, "message:send", { conversationId: convs[0]!.id, clientMsgId: "a", content: "ping" });
    await request(device, "message:send", { conversationId: convs[0]!.id, clientMsgId: "b", content: "ping again" });
    device.close();

    const page1 = await api<{ conversations: Conversation[]; nextCursor: string | null }>(
      url,
      "GET",
      "/v1/conversations?limit=2",
      { token: me.accessToken },
    );
    assert.equal(page1.body.conversations.length, 2);
    assert.equal(page1.body.conversations[0]!.id, convs[0]!.id);
    assert.equal(page1.body.conversations[0]!.unreadCount, 2);
    assert.equal(page1.body.conversations[0]!.lastMessage?.content, "ping again");
    assert.ok(page1.body.nextCursor);
    const page2 = await api<{ conversations: Conversation[]; nextCursor: string | null }>(
      url,
      "GET",
      `/v1/conversations?limit=2&cursor=${page1.body.nextCursor}`,
      { token: me.accessToken },
    );
    assert.equal(page2.body.conversations.length, 1);
    assert.equal(page2.body.nextCursor, null);
    const all = [...page1.body.conversations, ...page2.body.conversations].map((c) => c.id);
    assert.deepEqual([...all].sort(), convs.map((c) => c.id).sort());

    const read = await api(url, "POST", `/v1/conversations/${convs[0]!.id}/read`, {
      token: me.accessToken,
      body: { seq: 2 },
    });
    assert.equal(read.status, 204);
    const after = await api<{ conversation: Conversation }>(url, "GET", `/v1/conversations/${convs[0]!.id}`, {
      token: me.accessToken,
    });
    assert.equal(after.body.conversation.unreadCount, 0);
    // Everyone's markers travel with the conversation, so a freshly loaded client can show read marks at once.
    const markers = Object.fromEntries(
      after.body.conversation.members.map((m) => [m.id, { readSeq: m.readSeq, deliveredSeq: m.deliveredSeq }]),
    );
    assert.deepEqual(markers, {
      [me.user.id]: { readSeq: 2, deliveredSeq: 0 },
      // The sender: sending moved both of its own markers.
      [others[0]!.user.id]: { readSeq: 2, deliveredSeq: 2 },
    });
  });
});
