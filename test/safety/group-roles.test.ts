// Group roles on three real gateway pods: only admins add, remove, rename and promote; anyone may leave; the last
// admin leaving promotes the oldest member; and a removed member stops receiving the conversation at once on every
// pod (messages, typing, presence), `sync` no longer returns it and its history is `not_found`.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { AuthResult, Conversation } from "@chat-gateway/protocol";
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

type Three = [AuthResult, AuthResult, AuthResult];
type Four = [AuthResult, AuthResult, AuthResult, AuthResult];

describe("group roles", () => {
  let cluster: Cluster;
  let urls: string[];
  let url: string;
  const devices: Device[] = [];

  before(async () => {
    cluster = await startGateways(3);
    urls = cluster.urls;
    url = urls[0]!;
  });
  after(async () => {
    for (const d of devices) d.close();
    await cluster?.cleanup();
  });

  const conv = (id: string) => `/v1/conversations/${id}`;
  const code = (res: { body: unknown }) => (res.body as { error?: { code: string } }).error?.code;
  const roles = async (token: string, id: string) => {
    const res = await api<{ conversation: Conversation }>(url, "GET", conv(id), { token });
    return Object.fromEntries(res.body.conversation.members.map((m) => [m.id, m.role]));
  };

  async function group(admin: AuthResult, members: AuthResult[]): Promise<string> {
    const { id } = await createConversation(url, admin.accessToken, {
      type: "group",
      title: "team",
      memberIds: members.map((m) => m.user.id),
    });
    return id;
  }

  test("members may not add, remove, rename or promote; admins may", async () => {
    const [admin, member, other, newcomer] = (await Promise.all([1, 2, 3, 4].map(() => registerUser(url)))) as Four;
    const id = await group(admin, [member, other]);
    const asMember = { token: member.accessToken };
    const refusals = [
      await api(url, "POST", `${conv(id)}/members`, { ...asMember, body: { userId: newcomer.user.id } }),
      await api(url, "DELETE", `${conv(id)}/members/${other.user.id}`, asMember),
      await api(url, "PATCH", conv(id), { ...asMember, body: { title: "mine now" } }),
      await api(url, "PATCH", `${conv(id)}/members/${member.user.id}`, { ...asMember, body: { role: "admin" } }),
    ];
    for (const res of refusals) {
      assert.equal(res.status, 403);
      assert.equal(code(res), "forbidden");
    }
    // Muting stays personal: any member.
    assert.equal((await api(url, "PATCH", conv(id), { ...asMember, body: { muted: true } })).status, 200);

    const asAdmin = { token: admin.accessToken };
    assert.equal(
      (await api(url, "POST", `${conv(id)}/members`, { ...asAdmin, body: { userId: newcomer.user.id } })).status,
      201,
    );
    assert.equal((await api(url, "PATCH", conv(id), { ...asAdmin, body: { title: "renamed" } })).status, 200);
    const promoted = await api(url, "PATCH", `${conv(id)}/members/${member.user.id}`, {
      ...asAdmin,
      body: { role: "admin" },
    });
    assert.equal(promoted.status, 200);
    assert.equal((await roles(admin.accessToken, id))[member.user.id], "admin");
    // The promoted member now may remove others.
    assert.equal((await api(url, "DELETE", `${conv(id)}/members/${other.user.id}`, asMember)).status, 204);
    // Removing someone who is not a member; a bad role; a stranger's call.
    assert.equal((await api(url, "DELETE", `${conv(id)}/members/${other.user.id}`, asAdmin)).status, 404);
    assert.equal(
      (await api(url, "PATCH", `${conv(id)}/members/${member.user.id}`, { ...asAdmin, body: { role: "owner" } }))
        .status,
      400,
    );
    const stranger = await api(url, "PATCH", `${conv(id)}/members/${member.user.id}`, {
      token: other.accessToken,
      body: { role: "member" },
    });
    assert.equal(stranger.status, 404);
    // Demote the other admin; the last admin cannot demote themselves.
    assert.equal(
      (await api(url, "PATCH", `${conv(id)}/members/${member.user.id}`, { ...asAdmin, body: { role: "member" } }))
        .status,
      200,
    );
    const last = await api(url, "PATCH", `${conv(id)}/members/${admin.user.id}`, {
      ...asAdmin,
      body: { role: "member" },
    });
    assert.equal(last.status, 409);
    // Direct conversations have no roles.
    const direct = await createConversation(url, admin.accessToken, { type: "direct", userId: member.user.id });
    const directRole = await api(url, "PATCH", `${conv(direct.id)}/members/${member.user.id}`, {
      ...asAdmin,
      body: { role: "admin" },
    });
    assert.equal(directRole.status, 403);
  });

  test("the last admin leaving promotes the oldest member, announced to the members", async () => {
    const [admin, oldest, younger] = (await Promise.all([1, 2, 3].map(() => registerUser(url)))) as Three;
    const id = await group(admin, [oldest]);
    // Joined later than `oldest`.
    await api(url, "POST", `${conv(id)}/members`, { token: admin.accessToken, body: { userId: younger.user.id } });
    const device = await connectDevice(urls[2]!, younger.accessToken);
    devices.push(device);
    const updated = waitForEvent(device, "conversation:updated", (e) =>
      e.conversation.members.some((m) => m.id === oldest.user.id && m.role === "admin"),
    );
    assert.equal(
      (await api(url, "DELETE", `${conv(id)}/members/${admin.user.id}`, { token: admin.accessToken })).status,
      204,
    );
    await updated;
    assert.deepEqual(await roles(younger.accessToken, id), { [oldest.user.id]: "admin", [younger.user.id]: "member" });
    // A member (not the last admin) leaving promotes nobody.
    assert.equal(
      (await api(url, "DELETE", `${conv(id)}/members/${younger.user.id}`, { token: younger.accessToken })).status,
      204,
    );
    assert.deepEqual(await roles(oldest.accessToken, id), { [oldest.user.id]: "admin" });
  });

  test("a removed member stops receiving the conversation at once on every pod; sync and history drop it", async () => {
    const [admin, stays, removed] = (await Promise.all([1, 2, 3].map(() => registerUser(url)))) as Three;
    const id = await group(admin, [stays, removed]);
    const removedDevices = await Promise.all(urls.map((u) => connectDevice(u, removed.accessToken)));
    const staysDevice = await connectDevice(urls[1]!, stays.accessToken);
    const adminDevice = await connectDevice(urls[2]!, admin.accessToken);
    devices.push(...removedDevices, staysDevice, adminDevice);
    // Warm every pod's typing member cache and presence watches with the removed member in them.
    for (const d of removedDevices) await request(d, "presence:subscribe", { userIds: [admin.user.id] });
    await request(adminDevice, "typing", { conversationId: id, isTyping: true });
    await Promise.all(removedDevices.map((d) => waitForEvent(d, "typing")));
    for (const d of removedDevices) await request(d, "typing", { conversationId: id, isTyping: true });

    const told = removedDevices.map((d) =>
      waitForEvent(
        d,
        "conversation:updated",
        (e) => e.conversation.id === id && !e.conversation.members.some((m) => m.id === removed.user.id),
      ),
    );
    const removal = await api(url, "DELETE", `${conv(id)}/members/${removed.user.id}`, { token: admin.accessToken });
    assert.equal(removal.status, 204);
    await Promise.all(told);

    const afterRemoval = removedDevices.map((d) => ({
      messages: collect(d, "message:new"),
      typing: collect(d, "typing"),
      presence: collect(d, "presence"),
    }));
    const staysTyping = collect(staysDevice, "typing");
    // Right away, from every pod: a message, typing from the admin (cached before), and typing from the removed.
    const sent = await request(adminDevice, "message:send", {
      conversationId: id,
      clientMsgId: "after-removal",
      content: "not for you",
    });
    assert.equal(sent.ok, true);
    await waitForEvent(staysDevice, "message:new", (m) => m.id === sent.message.id);
    await new Promise((r) => setTimeout(r, 2_100)); // past the typing throttle window
    await request(adminDevice, "typing", { conversationId: id, isTyping: true });
    for (const d of removedDevices) {
      const answer = await request(d, "typing", {
        conversationId: id,
        isTyping: true,
      });
      assert.equal(answer.error?.code, "not_found");
    }
    await eventually(() => staysTyping.some((t) => t.userId === admin.user.id), 5_000, "typing to the one who stays");
    // The admin goes offline: the one who stays hears it, the removed member (sharing nothing now) does not.
    await request(staysDevice, "presence:subscribe", { userIds: [admin.user.id] });
    const offline = waitForEvent(staysDevice, "presence", (p) => p.userId === admin.user.id && !p.online);
    adminDevice.close();
    await offline;
    await new Promise((r) => setTimeout(r, 300));
    for (const got of afterRemoval) {
      assert.deepEqual(got.messages, []);
      assert.deepEqual(got.typing, []);
      assert.deepEqual(got.presence, []);
    }
    assert.ok(!staysTyping.some((t) => t.userId === removed.user.id), "the removed member's typing goes nowhere");

    const sync = await request(removedDevices[1]!, "sync", { cursors: { [id]: 0 } });
    assert.equal(sync.ok, true);
    assert.ok(!sync.conversations.some((c) => c.id === id));
    assert.ok(!sync.messages.some((m) => m.conversationId === id));
    const history = await api(urls[2]!, "GET", `${conv(id)}/messages`, { token: removed.accessToken });
    assert.equal(history.status, 404);
    const reads = await request(removedDevices[0]!, "message:read", {
      conversationId: id,
      seq: 1,
    });
    assert.equal(reads.error?.code, "not_found");
  });
});
