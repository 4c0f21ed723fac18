// The same safety rules on the embedded database (PGlite, one node; Redis for the adapter and rate limits): the
// row-locking transactions of group roles, reports with their snapshot and their per-user limit answered 429 through
// Redis, and a suspension ending the user's socket.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import jwt from "jsonwebtoken";
import type { Conversation } from "@chat-gateway/protocol";
import { api, connectDevice, createConversation, registerUser, waitForEvent } from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";

const ADMIN_SECRET = "admin-key-secret-that-is-long-enough-0123456789";

describe("safety in embedded mode", () => {
  let cluster: Cluster;
  let url: string;

  before(async () => {
    cluster = await startGateways(1, {
      embedded: true,
      env: {
        SERVICE_KEYS: `mod-1:${ADMIN_SECRET}:trust-safety:admin`,
        RATE_LIMITS: "on",
        RATE_LIMIT_REPORTS_PER_HOUR: "1",
      },
    });
    url = cluster.urls[0]!;
  });
  after(() => cluster?.cleanup());

  const admin = () => {
    const now = Math.floor(Date.now() / 1000);
    return jwt.sign(
      { role: "admin", sub: "trust-safety", iss: "chat-gateway", aud: "chat-gateway", iat: now, exp: now + 300 },
      ADMIN_SECRET,
      { algorithm: "HS256", keyid: "mod-1" },
    );
  };

  test("roles, the last admin leaving, a report and a suspension work on PGlite", async () => {
    const [owner, first, second] = [await registerUser(url), await registerUser(url), await registerUser(url)];
    const { id } = await createConversation(url, owner.accessToken, {
      type: "group",
      title: "g",
      memberIds: [first.user.id, second.user.id],
    });
    const path = `/v1/conversations/${id}/members`;
    assert.equal((await api(url, "DELETE", `${path}/${second.user.id}`, { token: first.accessToken })).status, 403);
    assert.equal(
      (await api(url, "PATCH", `${path}/${second.user.id}`, { token: owner.accessToken, body: { role: "admin" } }))
        .status,
      200,
    );
    assert.equal((await api(url, "DELETE", `${path}/${owner.user.id}`, { token: owner.accessToken })).status, 204);
    assert.equal((await api(url, "DELETE", `${path}/${second.user.id}`, { token: second.accessToken })).status, 204);
    // Both admins gone: the oldest remaining member is admin.
    const left = await api<{ conversation: Conversation }>(url, "GET", `/v1/conversations/${id}`, {
      token: first.accessToken,
    });
    assert.deepEqual(
      left.body.conversation.members.map((m) => [m.id, m.role]),
      [[first.user.id, "admin"]],
    );

    const { id: direct } = await createConversation(url, owner.accessToken, { type: "direct", userId: first.user.id });
    const sent = await api<{ message: { id: string } }>(url, "POST", `/v1/conversations/${direct}/messages`, {
      token: first.accessToken,
      body: { clientMsgId: "x", content: "original words" },
    });
    const report = await api(url, "POST", "/v1/reports", {
      token: owner.accessToken,
      body: { messageId: sent.body.message.id, reason: "abuse" },
    });
    assert.equal(report.status, 201);
    // RATE_LIMIT_REPORTS_PER_HOUR=1: the second report within the hour is refused.
    const more = await api<{ error: { code: string } }>(url, "POST", "/v1/reports", {
      token: owner.accessToken,
      body: { userId: first.user.id, reason: "again" },
    });
    assert.equal(more.status, 429);
    assert.equal(more.body.error.code, "rate_limited");
    const listed = await api<{ reports: { message: { content: string } }[] }>(url, "GET", "/v1/admin/reports", {
      token: admin(),
    });
    assert.equal(listed.body.reports[0]?.message.content, "original words");

    const device = await connectDevice(url, first.accessToken);
    const ended = waitForEvent(device, "session:ended");
    const suspended = await api(url, "POST", `/v1/admin/users/${first.user.id}/suspend`, { token: admin() });
    assert.equal(suspended.status, 200);
    assert.deepEqual(await ended, { reason: "suspended" });
    device.close();
    const login = await api(url, "POST", "/v1/auth/login", {
      body: { username: first.user.username, password: "correct horse battery" },
    });
    assert.equal(login.status, 403);
  });
});
