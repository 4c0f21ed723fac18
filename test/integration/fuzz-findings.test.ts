// Regression tests for what the input fuzz (fuzz-inputs.test.ts) found, one test per finding, each on the exact
// input that broke the contract: a lone surrogate stored as U+FFFD, a malformed URL escape answered without the
// error envelope, non-canonical (upper-cased) ids that PostgreSQL matched and our string comparisons did not, and a
// refused service post that created its system user all the same.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import jwt from "jsonwebtoken";
import pg from "pg";
import type { AuthResult } from "@chat-gateway/protocol";
import { api, connectDevice, createConversation, type Device, registerUser, request } from "../helpers/clients.js";
import { type InProcessGateway, startInProcessGateway } from "../helpers/in-process.js";

const SERVICE_JWT_SECRET = "service-secret-that-is-long-enough-for-hs256-0123";
const ADMIN_KEY = { kid: "findings-admin", secret: "admin-secret-that-is-long-enough-for-hs256-4567", name: "ops" };

describe("fuzz findings", () => {
  let gw: InProcessGateway;
  let db: pg.Client;
  let alice: AuthResult;
  let bob: AuthResult;
  let conversationId: string;
  let device: Device;
  const count = async (table: string) =>
    Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]!.n);

  before(async () => {
    gw = await startInProcessGateway({
      database: "postgres",
      redis: true,
      captureLogs: "warn",
      env: {
        SERVICE_JWT_SECRET,
        SERVICE_KEYS: `${ADMIN_KEY.kid}:${ADMIN_KEY.secret}:${ADMIN_KEY.name}:admin`,
        MESSAGE_MAX_CHARS: "100",
      },
    });
    db = new pg.Client({ connectionString: gw.databaseUrl! });
    await db.connect();
    [alice, bob] = await Promise.all([registerUser(gw.url), registerUser(gw.url)]);
    conversationId = (await createConversation(gw.url, alice.accessToken, { type: "direct", userId: bob.user.id })).id;
    device = await connectDevice(gw.url, alice.accessToken);
  });
  after(async () => {
    device?.close();
    await db?.end();
    await gw?.close();
  });

  test("content with a lone surrogate is bad_request on both transports, and nothing is stored", async () => {
    for (const [i, content] of ["\ud800", "a\udfffb", "😀\ud83d"].entries()) {
      const ack = await request(device, "message:send", { conversationId, clientMsgId: `s-${i}`, content });
      assert.equal(ack.error?.code, "bad_request", JSON.stringify(content));
      const res = await api(gw.url, "POST", `/v1/conversations/${conversationId}/messages`, {
        token: alice.accessToken,
        body: { clientMsgId: `h-${i}`, content },
      });
      assert.equal(res.status, 400);
    }
    assert.equal(await count("messages"), 0);
    // A surrogate pair is an ordinary character (an emoji) and is stored as sent.
    const ok = await request(device, "message:send", {
      conversationId,
      clientMsgId: "pair",
      content: "😀",
    });
    assert.equal(ok.message.content, "😀");
  });

  test("a malformed percent-escape in the path gets 400 with the error envelope", async () => {
    for (const path of ["/v1/conversations/%ED%A0%80", "/v1/conversations/%ZZ/messages", "/v1/auth/%E0%A4%A"]) {
      const res = await api(gw.url, "GET", path, { token: alice.accessToken });
      assert.equal(res.status, 400, path);
      assert.deepEqual(Object.keys(res.body), ["error"], path);
      assert.equal((res.body.error as { code: string }).code, "bad_request", path);
    }
  });

  test("a query string that is not percent-encoded UTF-8 is bad_request, not searched for as typed", async () => {
    // fast-querystring keeps such an escape undecoded: the search ran for the text "%ED%A0%80" and answered 200.
    for (const query of ["query=%ED%A0%80", "query=ab%ZZ", "query=ab%E2%82", "query=ab%"]) {
      for (const path of ["/v1/search/messages", "/v1/users"]) {
        const res = await api(gw.url, "GET", `${path}?${query}`, { token: alice.accessToken });
        assert.equal(res.status, 400, `${path}?${query}`);
        assert.equal((res.body.error as { code: string }).code, "bad_request", `${path}?${query}`);
      }
    }
    // Proper escapes, multi-byte ones included, still work.
    const ok = await api(gw.url, "GET", "/v1/search/messages?query=%C3%A9t%C3%A9%20caf%C3%A9", {
      token: alice.accessToken,
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });

  test("an upper-cased id names nothing: no second direct conversation, not_found rather than an empty 200", async () => {
    const before = await count("conversations");
    const direct = await api(gw.url, "POST", "/v1/conversations", {
      token: alice.accessToken,
      body: { type: "direct", userId: bob.user.id.toUpperCase() },
    });
    assert.equal(direct.status, 404);
    assert.equal(await count("conversations"), before, "no second direct conversation for the same pair");

    const group = await api(gw.url, "POST", "/v1/conversations", {
      token: alice.accessToken,
      body: { type: "group", title: "g", memberIds: [bob.user.id, bob.user.id.toUpperCase()] },
    });
    assert.equal(group.status, 404);
    assert.equal(await count("conversations"), before);

    const get = await api(gw.url, "GET", `/v1/conversations/${conversationId.toUpperCase()}`, {
      token: alice.accessToken,
    });
    assert.equal(get.status, 404);
    assert.equal((get.body.error as { code: string }).code, "not_found");

    const send = await request(device, "message:send", {
      conversationId: conversationId.toUpperCase(),
      clientMsgId: "upper",
      content: "hi",
    });
    assert.equal(send.error?.code, "not_found");
  });

  test("a refused service post creates no system user", async () => {
    const token = jwt.sign({ role: "service" }, SERVICE_JWT_SECRET, {
      subject: "billing",
      issuer: "chat-gateway",
      audience: "chat-gateway",
      expiresIn: 300,
    });
    const users = await count("users");
    const post = (id: string, content: string) =>
      api(gw.url, "POST", `/v1/conversations/${id}/messages`, {
        token,
        body: { clientMsgId: `svc-${content.length}`, content, senderName: "Billing" },
      });
    assert.equal((await post("0b7a3f0e-4a43-4c4e-9a5c-1f2d3e4f5a6b", "hi")).status, 404, "no such conversation");
    assert.equal((await post(conversationId.toUpperCase(), "hi")).status, 404, "not the conversation's id");
    assert.equal((await post(conversationId, "x".repeat(101))).status, 413, "content too long");
    assert.equal(await count("users"), users, "no system user was created");
    assert.equal((await post(conversationId, "invoice paid")).status, 201);
    assert.equal(await count("users"), users + 1, "the first accepted post creates it");
  });

  test("a JSON null body is not an empty one: the admin API and account deletion refuse it and change nothing", async () => {
    const admin = jwt.sign({ role: "admin" }, ADMIN_KEY.secret, {
      subject: ADMIN_KEY.name,
      issuer: "chat-gateway",
      audience: "chat-gateway",
      expiresIn: 300,
      keyid: ADMIN_KEY.kid,
    });
    const carol = await registerUser(gw.url);
    const report = await api<{ report: { id: string } }>(gw.url, "POST", "/v1/reports", {
      token: alice.accessToken,
      body: { userId: carol.user.id, reason: "findings" },
    });
    assert.equal(report.status, 201);
    const nullBody = (path: string, token: string, method = "POST") =>
      api(gw.url, method, path, { token, rawBody: "null" });
    const suspended = async () =>
      (await db.query(`SELECT suspended_at FROM users WHERE id = $1`, [carol.user.id])).rows[0]!.suspended_at;
    const suspend = await nullBody(`/v1/admin/users/${carol.user.id}/suspend`, admin);
    assert.equal(suspend.status, 400, JSON.stringify(suspend.body));
    assert.equal(await suspended(), null, "carol is not suspended");
    const resolve = await nullBody(`/v1/admin/reports/${report.body.report.id}/resolve`, admin);
    assert.equal(resolve.status, 400, JSON.stringify(resolve.body));
    const open = await db.query(`SELECT count(*)::int AS n FROM reports WHERE resolved_at IS NULL`);
    assert.equal(open.rows[0]!.n, 1, "the report is still open");
    const deletion = await nullBody("/v1/users/me", carol.accessToken, "DELETE");
    assert.equal(deletion.status, 400);
    // No body at all is still the empty one the routes allow.
    const bare = await api(gw.url, "POST", `/v1/admin/reports/${report.body.report.id}/resolve`, { token: admin });
    assert.equal(bare.status, 200, JSON.stringify(bare.body));
  });

  test("a JSON body declared in another charset than UTF-8 is refused, not read as UTF-8", async () => {
    const admin = jwt.sign({ role: "admin" }, ADMIN_KEY.secret, {
      subject: ADMIN_KEY.name,
      issuer: "chat-gateway",
      audience: "chat-gateway",
      expiresIn: 300,
      keyid: ADMIN_KEY.kid,
    });
    const carol = await registerUser(gw.url);
    const suspend = (contentType: string) =>
      api(gw.url, "POST", `/v1/admin/users/${carol.user.id}/suspend`, {
        token: admin,
        rawBody: "{}",
        headers: { "content-type": contentType },
      });
    for (const type of [
      "application/json; charset=utf-16",
      "application/json;charset=latin1",
      'application/json; charset=""',
    ]) {
      const res = await suspend(type);
      assert.equal(res.status, 400, type);
      assert.equal((res.body.error as { code: string }).code, "bad_request", type);
    }
    const row = await db.query(`SELECT suspended_at FROM users WHERE id = $1`, [carol.user.id]);
    assert.equal(row.rows[0]!.suspended_at, null, "carol is not suspended");
    assert.equal((await suspend("application/json; charset=UTF-8")).status, 200, "UTF-8 declared is fine");
  });

  test("a URL past the header size limit gets the error envelope (payload_too_large), not Fastify's 431 body", async () => {
    const res = await api(gw.url, "GET", `/v1/search/messages?query=a${"%F0%9F%98%80".repeat(1500)}`, {
      token: alice.accessToken,
    });
    assert.equal(res.status, 413);
    assert.equal((res.body.error as { code: string }).code, "payload_too_large");
    assert.equal((await fetch(`${gw.url}/healthz`)).status, 200, "the gateway carries on");
  });
});
