// DELETE /v1/users/me on two real pods (plus a third with ACCOUNT_DELETION_MESSAGES=delete on the same database):
// a user with sockets on both pods deletes the account; both sockets end with `session:ended`, login, refresh and the
// old access token fail, the other members' history keeps the seq with tombstones, push subscriptions and logins are
// gone, the username is free again. An external identity deletes with a fresh token only, and its older tokens do not
// bring the account back.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import type { AuthResult, Message } from "@chat-gateway/protocol";
import {
  api,
  connectDevice,
  createConversation,
  type Device,
  eventually,
  registerUser,
  request,
  waitForEvent,
} from "../helpers/clients.js";
import { type Cluster, type GatewayProcess, startGateways } from "../helpers/gateways.js";
import { type IdentityProvider, type ProviderKey, startIdentityProvider } from "../helpers/identity-provider.js";

const PASSWORD = "correct horse battery";

interface ConversationView {
  members: { id: string; username: string; displayName: string }[];
}

describe("account deletion", () => {
  let idp: IdentityProvider;
  let key: ProviderKey;
  let cluster: Cluster;
  let deleteModePod: GatewayProcess;
  let db: pg.Client;
  const devices: Device[] = [];

  before(async () => {
    idp = await startIdentityProvider();
    key = await idp.newKey("RS256");
    idp.publish([key]);
    cluster = await startGateways(2, { env: idp.env() });
    deleteModePod = await cluster.startAnother({ ACCOUNT_DELETION_MESSAGES: "delete" });
    db = new pg.Client({ connectionString: cluster.databaseUrl });
    await db.connect();
  });
  after(async () => {
    for (const d of devices) d.close();
    await db?.end();
    await cluster?.cleanup();
    await idp?.close();
  });

  const connect = async (url: string, token: string) => {
    const device = await connectDevice(url, token);
    devices.push(device);
    return device;
  };
  const send = async (device: Device, conversationId: string, content: string) => {
    const answer = await request(device, "message:send", {
      conversationId,
      clientMsgId: randomUUID(),
      content,
    });
    assert.equal(answer.ok, true, JSON.stringify(answer));
    return answer.message;
  };
  const deleteMe = (url: string, token: string, body?: unknown) =>
    api<{ error?: { code: string; details?: unknown } }>(url, "DELETE", "/v1/users/me", { token, body });
  const count = async (sql: string, params: unknown[]) =>
    Number((await db.query<{ n: string }>(sql, params)).rows[0]!.n);

  test("sockets on both pods end, logins and tokens fail, history keeps tombstones, subscriptions gone", async () => {
    const [u0, u1] = cluster.urls as [string, string];
    const alice = await registerUser(u0);
    const bob = await registerUser(u1);
    const group = await createConversation(u0, alice.accessToken, {
      type: "group",
      title: "team",
      memberIds: [bob.user.id],
    });
    const aliceOn0 = await connect(u0, alice.accessToken);
    const aliceOn1 = await connect(u1, alice.accessToken);
    const bobDevice = await connect(u1, bob.accessToken);
    await send(aliceOn0, group.id, "first from alice");
    await send(bobDevice, group.id, "bob answers");
    await send(aliceOn1, group.id, "second from alice");
    await db.query(
      `INSERT INTO push_subscriptions (id, user_id, type, endpoint) VALUES ($1, $2, 'fcm', $3), ($4, $2, 'fcm', $5)`,
      [randomUUID(), alice.user.id, `fcm-${randomUUID()}`, randomUUID(), `fcm-${randomUUID()}`],
    );

    assert.equal((await deleteMe(u0, alice.accessToken, { password: "wrong password!" })).status, 401);
    const missing = await deleteMe(u0, alice.accessToken);
    assert.equal(missing.status, 400);
    assert.equal(missing.body.error?.code, "bad_request");
    assert.equal(aliceOn0.connected && aliceOn1.connected, true, "refused attempts change nothing");

    const ended = [aliceOn0, aliceOn1].map((d) => waitForEvent(d, "session:ended"));
    const gone = [aliceOn0, aliceOn1].map((d) => new Promise((resolve) => d.once("disconnect", resolve)));
    assert.equal((await deleteMe(u1, alice.accessToken, { password: PASSWORD })).status, 204);
    assert.deepEqual(await Promise.all(ended), [{ reason: "revoked" }, { reason: "revoked" }]);
    await Promise.all(gone);
    assert.equal(bobDevice.connected, true);

    const login = await api(u0, "POST", "/v1/auth/login", {
      body: { username: alice.user.username, password: PASSWORD },
    });
    assert.equal(login.status, 401);
    assert.equal(
      (await api(u1, "POST", "/v1/auth/refresh", { body: { refreshToken: alice.refreshToken } })).status,
      401,
    );
    assert.equal((await api(u1, "GET", "/v1/users/me", { token: alice.accessToken })).status, 401);
    await assert.rejects(connectDevice(u0, alice.accessToken), { message: "unauthorized" });

    // Bob's history: the same seqs, alice's messages as tombstones, his own intact; the group still works.
    const history = await api<{ messages: Message[] }>(u0, "GET", `/v1/conversations/${group.id}/messages`, {
      token: bob.accessToken,
    });
    assert.deepEqual(
      history.body.messages.map((m) => [m.seq, m.senderId, m.content]),
      [
        [1, alice.user.id, ""],
        [2, bob.user.id, "bob answers"],
        [3, alice.user.id, ""],
      ],
    );
    const deletedAt = await db.query("SELECT deleted_at FROM messages WHERE sender_id = $1", [alice.user.id]);
    assert.ok(deletedAt.rows.every((r: { deleted_at: Date | null }) => r.deleted_at !== null));
    assert.equal((await send(bobDevice, group.id, "still here")).seq, 4);
    const view = await api<{ conversation: ConversationView }>(u1, "GET", `/v1/conversations/${group.id}`, {
      token: bob.accessToken,
    });
    const shown = view.body.conversation.members.find((m) => m.id === alice.user.id);
    assert.deepEqual(shown, { ...shown, username: `deleted-${alice.user.id}`, displayName: "Deleted user" });

    assert.equal(await count("SELECT count(*) AS n FROM push_subscriptions WHERE user_id = $1", [alice.user.id]), 0);
    assert.equal(await count("SELECT count(*) AS n FROM refresh_families WHERE user_id = $1", [alice.user.id]), 0);
    assert.equal(
      await count("SELECT count(*) AS n FROM users WHERE id = $1 AND password_hash IS NULL", [alice.user.id]),
      1,
    );
    // Nobody finds the tombstone; the name is free for someone new.
    const search = await api<{ users: unknown[] }>(u0, "GET", "/v1/users?query=deleted-", { token: bob.accessToken });
    assert.deepEqual(search.body.users, []);
    assert.equal((await registerUser(u0, alice.user.username)).user.username, alice.user.username);
  });

  test("the tombstones reach online members as message:updated with change numbers; sync converges; files go", async () => {
    const [u0, u1] = cluster.urls as [string, string];
    const frank = await registerUser(u0);
    const gina = await registerUser(u1);
    const group = await createConversation(u0, frank.accessToken, {
      type: "group",
      title: "before leaving",
      memberIds: [gina.user.id],
    });
    const direct = await createConversation(u0, frank.accessToken, { type: "direct", userId: gina.user.id });
    const frankDevice = await connect(u0, frank.accessToken);
    const ginaDevice = await connect(u1, gina.accessToken);
    // One of frank's messages carries a file.
    const bytes = Buffer.from("frank's notes\n");
    const upload = await api<{ upload: { id: string; url: string; headers: Record<string, string> } }>(
      u0,
      "POST",
      "/v1/uploads",
      { token: frank.accessToken, body: { name: "notes.txt", mimeType: "text/plain", size: bytes.length } },
    );
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    const { id: fileId, url: putUrl, headers } = upload.body.upload;
    assert.equal((await fetch(new URL(putUrl, u0), { method: "PUT", headers, body: bytes })).status, 200);
    const withFile = await request(frankDevice, "message:send", {
      conversationId: group.id,
      clientMsgId: randomUUID(),
      content: "see attached",
      attachmentIds: [fileId],
    });
    assert.equal(withFile.ok, true, JSON.stringify(withFile));
    const frankSent = [
      withFile.message,
      await send(frankDevice, group.id, "two"),
      await send(frankDevice, direct.id, "dm"),
    ];
    const ginas = await send(ginaDevice, group.id, "gina stays");
    // Gina's device is caught up: its change cursors as sync hands them out now.
    const before = await request(ginaDevice, "sync", {
      cursors: { [group.id]: { seq: 3, changes: 0 }, [direct.id]: { seq: 1, changes: 0 } },
    });

    const expected = new Set(frankSent.map((m) => m.id));
    const updates: Message[] = [];
    const allUpdated = new Promise<void>((resolve) => {
      ginaDevice.on("message:updated", (m: Message) => {
        updates.push(m);
        if (updates.filter((u) => expected.has(u.id)).length === expected.size) resolve();
      });
    });
    assert.equal((await deleteMe(u0, frank.accessToken, { password: PASSWORD })).status, 204);
    await Promise.race([
      allUpdated,
      new Promise((_, reject) => setTimeout(() => reject(new Error("no message:updated for every tombstone")), 5_000)),
    ]);
    for (const m of updates) {
      assert.ok(expected.has(m.id), "only frank's messages change");
      assert.equal(m.content, "");
      assert.ok(m.deletedAt);
      assert.deepEqual(m.attachments, []);
    }
    // Each tombstone took its own change number, in order within its conversation.
    const groupChanges = updates.filter((m) => m.conversationId === group.id).map((m) => m.changeSeq);
    assert.equal(new Set(groupChanges).size, 2);
    assert.deepEqual(
      groupChanges,
      [...groupChanges].sort((a, b) => a - b),
    );

    // A device that was offline converges through sync with change cursors.
    const after = await request(ginaDevice, "sync", {
      cursors: {
        [group.id]: { seq: 3, changes: before.changeCursors[group.id] ?? 0 },
        [direct.id]: { seq: 1, changes: before.changeCursors[direct.id] ?? 0 },
      },
    });
    assert.deepEqual(new Set(after.changes.map((m) => m.id)), expected);
    assert.ok(after.changes.every((m) => m.content === "" && m.deletedAt !== null && m.attachments.length === 0));
    assert.ok(after.changes.every((m) => m.id !== ginas.id));
    const again = await request(ginaDevice, "sync", {
      cursors: {
        [group.id]: { seq: 3, changes: after.changeCursors[group.id]! },
        [direct.id]: { seq: 1, changes: after.changeCursors[direct.id]! },
      },
    });
    assert.deepEqual(again.changes, []);

    // Frank's files are gone, rows and bytes.
    await eventually(
      async () => (await count("SELECT count(*) AS n FROM attachments WHERE uploader_id = $1", [frank.user.id])) === 0,
      5_000,
      "frank's attachment rows deleted",
    );
    assert.equal((await api(u1, "GET", `/v1/attachments/${fileId}`, { token: gina.accessToken })).status, 404);
  });

  test("ACCOUNT_DELETION_MESSAGES=delete: conversations nobody else is in go entirely; shared ones keep tombstones", async () => {
    const url = deleteModePod.url;
    const carol = await registerUser(url);
    const dave = await registerUser(url);
    const shared = await createConversation(url, carol.accessToken, { type: "direct", userId: dave.user.id });
    const alone = await createConversation(url, carol.accessToken, {
      type: "group",
      title: "notes",
      memberIds: [dave.user.id],
    });
    const carolDevice = await connect(url, carol.accessToken);
    await send(carolDevice, shared.id, "to dave");
    await send(carolDevice, alone.id, "note to self");
    assert.equal(
      (await api(url, "DELETE", `/v1/conversations/${alone.id}/members/${dave.user.id}`, { token: dave.accessToken }))
        .status,
      204,
    );

    assert.equal((await deleteMe(url, carol.accessToken, { password: PASSWORD })).status, 204);
    assert.equal(await count("SELECT count(*) AS n FROM conversations WHERE id = $1", [alone.id]), 0);
    const history = await api<{ messages: Message[] }>(url, "GET", `/v1/conversations/${shared.id}/messages`, {
      token: dave.accessToken,
    });
    assert.deepEqual(
      history.body.messages.map((m) => [m.seq, m.content]),
      [[1, ""]],
    );
  });

  test("an external identity deletes with a fresh token; older tokens do not bring the account back", async () => {
    const [u0, u1] = cluster.urls as [string, string];
    const sub = randomUUID();
    const now = Math.floor(Date.now() / 1000);
    const stale = await idp.token(key, { sub, iat: now - 600 });
    const me = await api<{ id: string }>(u0, "GET", "/v1/users/me", { token: stale });
    assert.equal(me.status, 200);
    const device = await connect(u1, stale);

    const refused = await deleteMe(u0, stale);
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error?.code, "forbidden");
    assert.deepEqual(refused.body.error?.details, { reason: "reauthentication_required", maxTokenAgeS: 300 });

    const ended = waitForEvent(device, "session:ended");
    assert.equal((await deleteMe(u1, await idp.token(key, { sub }))).status, 204);
    assert.deepEqual(await ended, { reason: "revoked" });
    assert.equal(await count("SELECT count(*) AS n FROM external_identities WHERE user_id = $1", [me.body.id]), 0);

    // Issued before the deletion: refused, not a new account.
    for (const url of [u0, u1]) assert.equal((await api(url, "GET", "/v1/users/me", { token: stale })).status, 401);
    await assert.rejects(connectDevice(u0, stale), { message: "unauthorized" });
    // A later sign-in at the provider starts a new, empty account.
    await new Promise((r) => setTimeout(r, 1100));
    const fresh = await api<{ id: string }>(u0, "GET", "/v1/users/me", { token: await idp.token(key, { sub }) });
    assert.equal(fresh.status, 200);
    assert.notEqual(fresh.body.id, me.body.id);
  });

  test("an own account's token is no proof without the password", async () => {
    const [u0] = cluster.urls as [string];
    const erin: AuthResult = await registerUser(u0);
    const res = await deleteMe(u0, erin.accessToken, {});
    assert.equal(res.status, 400);
    assert.equal((await api(u0, "GET", "/v1/users/me", { token: erin.accessToken })).status, 200);
  });
});
