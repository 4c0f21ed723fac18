// Reports and the operator API on three real gateway pods (PostgreSQL, Redis, sharded adapter): who may reach
// /v1/admin, the report's snapshot surviving a later change of the message, the signed report webhook (retried
// through the queue), suspension ending a user's sockets on every pod at once and refusing every way back in until
// lifted, and the audit rows of each action.
import assert from "node:assert/strict";
import { createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:http";
import { after, before, describe, test } from "node:test";
import jwt from "jsonwebtoken";
import pg from "pg";
import type { AuthResult, Message } from "@chat-gateway/protocol";
import {
  api,
  connectDevice,
  createConversation,
  type Device,
  eventually,
  registerUser,
  waitForEvent,
} from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";

const ADMIN_SECRET = "admin-key-secret-that-is-long-enough-0123456789";
const PLAIN_SECRET = "plain-key-secret-that-is-long-enough-0123456789";
const HOOK_SECRET = "report-hook-secret-that-is-long-enough-012345";

function serviceToken(kid: string, secret: string, sub: string, role: "admin" | "service"): string {
  const now = Math.floor(Date.now() / 1000);
  return jwt.sign({ role, sub, iss: "chat-gateway", aud: "chat-gateway", iat: now, exp: now + 300 }, secret, {
    algorithm: "HS256",
    keyid: kid,
  });
}

/** The operator's report webhook: answers 503 to the first delivery (to prove the retry), verifies signatures. */
class ReportReceiver {
  readonly received: { type: string; report: Record<string, unknown> }[] = [];
  readonly refused: string[] = [];
  calls = 0;
  private server: Server | undefined;
  url = "";

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        this.calls += 1;
        if (this.calls === 1) return res.writeHead(503).end();
        const body = Buffer.concat(chunks);
        const ts = String(req.headers["x-report-timestamp"]);
        const expected = `v1=${createHmac("sha256", HOOK_SECRET).update(`${ts}.`).update(body).digest("hex")}`;
        const got = Buffer.from(String(req.headers["x-report-signature"]));
        if (got.length !== expected.length || !timingSafeEqual(got, Buffer.from(expected))) {
          this.refused.push("bad signature");
          return res.writeHead(401).end();
        }
        this.received.push(JSON.parse(body.toString()) as { type: string; report: Record<string, unknown> });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    const address = this.server.address();
    this.url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/reports`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

describe("reports and moderation", () => {
  let cluster: Cluster;
  let urls: string[];
  let url: string;
  let db: pg.Client;
  const receiver = new ReportReceiver();
  const admin = () => serviceToken("mod-1", ADMIN_SECRET, "trust-safety", "admin");
  const devices: Device[] = [];

  before(async () => {
    await receiver.start();
    cluster = await startGateways(3, {
      env: {
        SERVICE_KEYS: JSON.stringify({
          "mod-1": { secret: ADMIN_SECRET, names: ["trust-safety"], admin: true },
          "plain-1": { secret: PLAIN_SECRET, names: ["billing"] },
        }),
        REPORT_WEBHOOK_URL: receiver.url,
        REPORT_WEBHOOK_SECRET: HOOK_SECRET,
        PUSH_RETRY_BASE_MS: "50",
        PUSH_QUEUE_PREFIX: `reports-test-${Date.now()}`,
      },
    });
    urls = cluster.urls;
    url = urls[0]!;
    db = new pg.Client({ connectionString: cluster.databaseUrl });
    await db.connect();
  });
  after(async () => {
    for (const d of devices) d.close();
    await db?.end();
    await cluster?.cleanup();
    await receiver.stop();
  });

  test("only admin tokens reach /v1/admin: no token 401, user and plain service tokens 403", async () => {
    const user = await registerUser(url);
    const paths = ["/v1/admin/reports", "/v1/admin/audit"];
    for (const path of paths) {
      assert.equal((await api(url, "GET", path)).status, 401, `${path} without a token`);
      const asUser = await api<{ error: { code: string } }>(url, "GET", path, { token: user.accessToken });
      assert.equal(asUser.status, 403, `${path} as a user`);
      assert.equal(asUser.body.error.code, "forbidden");
      const plain = serviceToken("plain-1", PLAIN_SECRET, "billing", "service");
      assert.equal((await api(url, "GET", path, { token: plain })).status, 403, `${path} with a service token`);
      // The admin role is bound to the key: a plain key cannot mint it.
      const forged = serviceToken("plain-1", PLAIN_SECRET, "billing", "admin");
      assert.equal((await api(url, "GET", path, { token: forged })).status, 401, `${path} with a forged admin token`);
      assert.equal((await api(url, "GET", path, { token: admin() })).status, 200, `${path} as admin`);
    }
    const suspend = await api(url, "POST", `/v1/admin/users/${user.user.id}/suspend`, { token: user.accessToken });
    assert.equal(suspend.status, 403);
    // An admin token is not a user token either.
    assert.equal((await api(url, "GET", "/v1/conversations", { token: admin() })).status, 401);
  });

  test("a message report keeps the message as it was; members only; webhook and admin API get it", async () => {
    const [alice, bob, eve] = [await registerUser(url), await registerUser(url), await registerUser(url)];
    const conversation = await createConversation(url, alice.accessToken, { type: "direct", userId: bob.user.id });
    const sent = await api<{ message: { id: string; createdAt: string } }>(
      url,
      "POST",
      `/v1/conversations/${conversation.id}/messages`,
      { token: bob.accessToken, body: { clientMsgId: "m1", content: "something nasty" } },
    );
    const messageId = sent.body.message.id;

    const bad = [
      { messageId, userId: bob.user.id, reason: "both" },
      { reason: "neither" },
      { messageId, reason: "" },
      { messageId, reason: "x".repeat(1001) },
      { messageId, reason: "bell\u0007" },
    ];
    for (const body of bad) {
      const res = await api<{ error: { code: string } }>(url, "POST", "/v1/reports", {
        token: alice.accessToken,
        body,
      });
      assert.equal(res.status, 400, JSON.stringify(body).slice(0, 60));
    }
    // Not a member of the conversation: the message does not exist for eve.
    const outsider = await api<{ error: { code: string } }>(url, "POST", "/v1/reports", {
      token: eve.accessToken,
      body: { messageId, reason: "spam" },
    });
    assert.equal(outsider.status, 404);
    assert.equal(outsider.body.error.code, "not_found");

    const filed = await api<{ report: { id: string } }>(urls[1]!, "POST", "/v1/reports", {
      token: alice.accessToken,
      body: { messageId, reason: "harassment" },
    });
    assert.equal(filed.status, 201);
    const reportId = filed.body.report.id;
    // Later edited (and then emptied as a delete would): the report still has what alice saw.
    await db.query("UPDATE messages SET content = $1 WHERE id = $2", ["edited to look innocent", messageId]);
    await db.query("UPDATE messages SET content = '' WHERE id = $1", [messageId]);

    const list = await api<{ reports: Record<string, unknown>[] }>(url, "GET", "/v1/admin/reports?status=open", {
      token: admin(),
    });
    const report = list.body.reports.find((r) => r.id === reportId);
    assert.ok(report, "listed as open");
    assert.deepEqual(report.message, {
      id: messageId,
      senderId: bob.user.id,
      content: "something nasty",
      createdAt: sent.body.message.createdAt,
    });
    assert.equal(report.reporterId, alice.user.id);
    assert.equal(report.targetUserId, bob.user.id);
    assert.equal(report.reason, "harassment");

    // The webhook got it signed, after one refused delivery (503) was retried by the queue.
    await eventually(() => receiver.received.some((r) => r.report.id === reportId), 10_000, "the report webhook");
    const hooked = receiver.received.find((r) => r.report.id === reportId)!;
    assert.equal(hooked.type, "report");
    assert.equal((hooked.report.message as { content: string }).content, "something nasty");
    assert.deepEqual(receiver.refused, []);
    assert.ok(receiver.calls >= 2);

    // A report of a user; and of a user who does not exist.
    const byUser = await api(url, "POST", "/v1/reports", {
      token: bob.accessToken,
      body: { userId: alice.user.id, reason: "impersonation" },
    });
    assert.equal(byUser.status, 201);
    const nobody = await api(url, "POST", "/v1/reports", {
      token: bob.accessToken,
      body: { userId: "00000000-0000-4000-8000-000000000000", reason: "x" },
    });
    assert.equal(nobody.status, 404);

    // Resolving is recorded in the audit log; resolving twice is a conflict.
    const resolved = await api<{ report: { status: string; resolution: { action: string; by: string } } }>(
      urls[2]!,
      "POST",
      `/v1/admin/reports/${reportId}/resolve`,
      { token: admin(), body: { action: "warned", note: "first offence" } },
    );
    assert.equal(resolved.status, 200);
    assert.equal(resolved.body.report.status, "resolved");
    assert.equal(resolved.body.report.resolution.action, "warned");
    const again = await api(url, "POST", `/v1/admin/reports/${reportId}/resolve`, { token: admin(), body: {} });
    assert.equal(again.status, 409);
    const open = await api<{ reports: { id: string }[] }>(url, "GET", "/v1/admin/reports?status=open", {
      token: admin(),
    });
    assert.ok(!open.body.reports.some((r) => r.id === reportId));
    const audit = await api<{ entries: Record<string, unknown>[] }>(url, "GET", "/v1/admin/audit", { token: admin() });
    const row = audit.body.entries.find((e) => e.action === "report.resolve");
    assert.ok(row);
    assert.deepEqual(row.actor, { keyId: "kid:mod-1", name: "trust-safety" });
    assert.deepEqual(row.target, { type: "report", id: reportId });
    assert.deepEqual(row.details, { action: "warned", note: "first offence" });
  });

  test("suspension ends the user's sockets on all three pods at once and refuses every way back until lifted", async () => {
    const username = `susp${Date.now().toString(36)}`;
    const victim = await registerUser(url, username);
    const other = await login(url, username);
    const onEach = await Promise.all(urls.map((u) => connectDevice(u, victim.accessToken)));
    devices.push(...onEach);
    const ended = onEach.map((d) => waitForEvent(d, "session:ended", () => true, 5_000));
    const gone = onEach.map((d) => new Promise<void>((resolve) => d.once("disconnect", () => resolve())));

    const res = await api<{ user: { suspendedAt: string | null; revokedSessions: number } }>(
      url,
      "POST",
      `/v1/admin/users/${victim.user.id}/suspend`,
      { token: admin(), body: { reason: "spam wave" } },
    );
    assert.equal(res.status, 200);
    assert.ok(res.body.user.suspendedAt);
    assert.equal(res.body.user.revokedSessions, 2);
    for (const event of await Promise.all(ended)) assert.deepEqual(event, { reason: "suspended" });
    await Promise.all(gone);

    // The still-unexpired access tokens are refused everywhere; refresh and login too.
    for (const u of urls) {
      assert.equal((await api(u, "GET", "/v1/users/me", { token: victim.accessToken })).status, 401);
      await assert.rejects(connectDevice(u, other.accessToken), /unauthorized/);
    }
    const refresh = await api(url, "POST", "/v1/auth/refresh", { body: { refreshToken: victim.refreshToken } });
    assert.equal(refresh.status, 401);
    const refused = await api<{ error: { code: string } }>(url, "POST", "/v1/auth/login", {
      body: { username, password: "correct horse battery" },
    });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, "forbidden");
    // A wrong password still answers unauthorized: suspension is not revealed to a guesser.
    const guess = await api(url, "POST", "/v1/auth/login", { body: { username, password: "wrong password!" } });
    assert.equal(guess.status, 401);

    const lifted = await api(url, "DELETE", `/v1/admin/users/${victim.user.id}/suspend`, { token: admin() });
    assert.equal(lifted.status, 200);
    const back = await login(url, username);
    assert.equal((await api(urls[2]!, "GET", "/v1/users/me", { token: back.accessToken })).status, 200);
    devices.push(await connectDevice(urls[1]!, back.accessToken));
    // Old logins stay revoked.
    assert.equal((await api(url, "GET", "/v1/users/me", { token: victim.accessToken })).status, 401);

    const audit = await api<{ entries: { action: string; target: { id: string }; details: unknown }[] }>(
      url,
      "GET",
      "/v1/admin/audit?limit=100",
      { token: admin() },
    );
    const mine = audit.body.entries.filter((e) => e.target.id === victim.user.id).map((e) => e.action);
    assert.deepEqual(mine, ["user.unsuspend", "user.suspend"]);
    assert.deepEqual(
      audit.body.entries.find((e) => e.action === "user.suspend" && e.target.id === victim.user.id)?.details,
      { reason: "spam wave" },
    );
    const unknown = await api(url, "POST", "/v1/admin/users/00000000-0000-4000-8000-000000000000/suspend", {
      token: admin(),
    });
    assert.equal(unknown.status, 404);
  });

  test("an admin deletes any message: tombstone and message:updated on the other pod, audited; users are refused", async () => {
    const alice = await registerUser(urls[0]!);
    const bob = await registerUser(urls[1]!);
    const group = await createConversation(urls[0]!, alice.accessToken, {
      type: "group",
      title: "moderated",
      memberIds: [bob.user.id],
    });
    const aliceDevice = await connectDevice(urls[0]!, alice.accessToken);
    const bobDevice = await connectDevice(urls[1]!, bob.accessToken);
    devices.push(aliceDevice, bobDevice);
    const sent = await api<{ message: { id: string; seq: number } }>(
      urls[0]!,
      "POST",
      `/v1/conversations/${group.id}/messages`,
      { token: alice.accessToken, body: { clientMsgId: randomUUID(), content: "against the rules" } },
    );
    assert.equal(sent.status, 201, JSON.stringify(sent.body));
    const path = `/v1/admin/conversations/${group.id}/messages/${sent.body.message.id}`;

    // A user token, even the sender's or a member's, is not an admin token.
    for (const token of [bob.accessToken, alice.accessToken]) {
      const refused = await api<{ error: { code: string } }>(url, "DELETE", path, { token });
      assert.equal(refused.status, 403);
      assert.equal(refused.body.error.code, "forbidden");
    }
    const plain = serviceToken("plain-1", PLAIN_SECRET, "billing", "service");
    assert.equal((await api(url, "DELETE", path, { token: plain })).status, 403);

    const updated = waitForEvent(bobDevice, "message:updated", (m) => m.id === sent.body.message.id, 5_000);
    const deleted = await api<{ message: Message }>(urls[2]!, "DELETE", path, { token: admin() });
    assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
    const tombstone = await updated;
    for (const m of [deleted.body.message, tombstone]) {
      assert.equal(m.content, "");
      assert.ok(m.deletedAt);
      assert.deepEqual(m.attachments, []);
      assert.equal(m.seq, sent.body.message.seq);
    }
    assert.ok(tombstone.changeSeq > 0);

    // Again: the same tombstone, nothing new recorded. Unknown: not_found.
    assert.equal((await api(url, "DELETE", path, { token: admin() })).status, 200);
    const unknown = `/v1/admin/conversations/${group.id}/messages/00000000-0000-4000-8000-000000000000`;
    assert.equal((await api(url, "DELETE", unknown, { token: admin() })).status, 404);
    assert.equal((await api(url, "DELETE", `/v1/admin/conversations/x/messages/y`, { token: admin() })).status, 404);

    const audit = await api<{
      entries: {
        action: string;
        actor: unknown;
        target: { type: string; id: string };
        details: unknown;
        createdAt: string;
      }[];
    }>(url, "GET", "/v1/admin/audit?limit=100", { token: admin() });
    const rows = audit.body.entries.filter((e) => e.target.id === sent.body.message.id);
    assert.equal(rows.length, 1);
    assert.deepEqual(
      { ...rows[0], createdAt: undefined },
      {
        action: "message.delete",
        actor: { keyId: "kid:mod-1", name: "trust-safety" },
        target: { type: "message", id: sent.body.message.id },
        details: { conversationId: group.id },
        createdAt: undefined,
        id: (rows[0] as { id?: string }).id,
      },
    );
    assert.ok(Date.parse(rows[0]!.createdAt) <= Date.now());
  });
});

async function login(url: string, username: string): Promise<AuthResult> {
  const res = await api<AuthResult>(url, "POST", "/v1/auth/login", {
    body: { username, password: "correct horse battery" },
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}
