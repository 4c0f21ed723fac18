// Accounts and tokens against a real gateway: register/login, rotating refresh with reuse detection (and its grace
// period for a retried or concurrent refresh), logout, and every way a token can be wrong answering `unauthorized`
// (HTTP and the socket handshake alike).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import jwt from "jsonwebtoken";
import type { AuthResult } from "@chat-gateway/protocol";
import { setTimeout as sleep } from "node:timers/promises";
import { api, connectDevice, registerUser, uniqueName, waitForEvent } from "../helpers/clients.js";
import { type Cluster, startGateways, TEST_JWT_SECRET } from "../helpers/gateways.js";

describe("accounts and tokens", () => {
  let cluster: Cluster;
  let url: string;
  before(async () => {
    // A one-second grace period, so reuse after it can be tested without waiting half a minute.
    cluster = await startGateways(1, { adapter: "memory", env: { REFRESH_REUSE_GRACE_S: "1" } });
    url = cluster.urls[0]!;
  });
  after(() => cluster.cleanup());

  test("register, login, me; wrong password and unknown user answer the same", async () => {
    const name = uniqueName("Alice");
    const reg = await registerUser(url, name);
    assert.equal(reg.user.username, name.toLowerCase(), "usernames are case-insensitive, stored lower-cased");
    assert.equal(reg.expiresIn, 900);
    const me = await api(url, "GET", "/v1/users/me", { token: reg.accessToken });
    assert.deepEqual(me.body, reg.user);

    const dup = await api(url, "POST", "/v1/auth/register", { body: { username: name, password: "another password" } });
    assert.equal(dup.status, 409);
    assert.equal((dup.body as { error: { code: string } }).error.code, "conflict");

    const ok = await api<AuthResult>(url, "POST", "/v1/auth/login", {
      body: { username: name, password: "correct horse battery", deviceName: "phone" },
    });
    assert.equal(ok.status, 200);
    assert.ok(ok.body.accessToken && ok.body.refreshToken);

    const wrong = await api(url, "POST", "/v1/auth/login", { body: { username: name, password: "wrong password" } });
    const unknown = await api(url, "POST", "/v1/auth/login", {
      body: { username: uniqueName(), password: "wrong password" },
    });
    assert.equal(wrong.status, 401);
    assert.deepEqual(wrong.body, unknown.body);
  });

  test("refresh rotates; a spent refresh token revokes the whole login, not the others", async () => {
    const first = await registerUser(url);
    const other = await api<AuthResult>(url, "POST", "/v1/auth/login", {
      body: { username: first.user.username, password: "correct horse battery" },
    });
    const second = await api<AuthResult>(url, "POST", "/v1/auth/refresh", {
      body: { refreshToken: first.refreshToken },
    });
    assert.equal(second.status, 200);
    assert.notEqual(second.body.refreshToken, first.refreshToken);

    await sleep(1_500); // past the grace period
    const reuse = await api(url, "POST", "/v1/auth/refresh", { body: { refreshToken: first.refreshToken } });
    assert.equal(reuse.status, 401);
    // The whole family is revoked: the newest token and the access token of that login stop working.
    const next = await api(url, "POST", "/v1/auth/refresh", { body: { refreshToken: second.body.refreshToken } });
    assert.equal(next.status, 401);
    assert.equal((await api(url, "GET", "/v1/users/me", { token: second.body.accessToken })).status, 401);
    // The other login is untouched.
    assert.equal((await api(url, "GET", "/v1/users/me", { token: other.body.accessToken })).status, 200);
  });

  test("a retried or concurrent refresh within the grace period gets the same successor; the login stays", async () => {
    const user = await registerUser(url);
    const refresh = (refreshToken: string) =>
      api<AuthResult>(url, "POST", "/v1/auth/refresh", { body: { refreshToken } });
    // Two refreshes with one token at once (two tabs, or a retry racing a slow answer): both succeed, same successor.
    const [a, b] = await Promise.all([refresh(user.refreshToken), refresh(user.refreshToken)]);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal(b.status, 200, JSON.stringify(b.body));
    assert.equal(a.body.refreshToken, b.body.refreshToken);
    assert.notEqual(a.body.refreshToken, user.refreshToken);
    // The answer was lost: the client retries with the spent token and still gets that same successor.
    const retry = await refresh(user.refreshToken);
    assert.equal(retry.status, 200);
    assert.equal(retry.body.refreshToken, a.body.refreshToken);
    // Every access token handed out is of a live login, and the successor rotates normally.
    for (const r of [a, b, retry]) {
      assert.equal((await api(url, "GET", "/v1/users/me", { token: r.body.accessToken })).status, 200);
    }
    const next = await refresh(a.body.refreshToken);
    assert.equal(next.status, 200);
    assert.notEqual(next.body.refreshToken, a.body.refreshToken);
    // Once the successor is spent, the first token has no answer left to repeat: presenting it is a reuse.
    const late = await refresh(user.refreshToken);
    assert.equal(late.status, 401);
    assert.equal((await refresh(next.body.refreshToken)).status, 401, "the family is revoked");
  });

  test("a spent refresh token presented after the grace period revokes the login", async () => {
    const user = await registerUser(url);
    const device = await connectDevice(url, user.accessToken);
    const ended = waitForEvent(device, "session:ended", () => true, 10_000);
    const second = await api<AuthResult>(url, "POST", "/v1/auth/refresh", {
      body: { refreshToken: user.refreshToken },
    });
    assert.equal(second.status, 200);
    await sleep(1_500);
    const reuse = await api<{ error: { code: string } }>(url, "POST", "/v1/auth/refresh", {
      body: { refreshToken: user.refreshToken },
    });
    assert.equal(reuse.status, 401);
    assert.equal(reuse.body.error.code, "unauthorized");
    assert.deepEqual(await ended, { reason: "revoked" });
    device.close();
    assert.equal(
      (await api(url, "POST", "/v1/auth/refresh", { body: { refreshToken: second.body.refreshToken } })).status,
      401,
    );
    assert.equal((await api(url, "GET", "/v1/users/me", { token: second.body.accessToken })).status, 401);
  });

  test("logout revokes that login only", async () => {
    const a = await registerUser(url);
    const b = await api<AuthResult>(url, "POST", "/v1/auth/login", {
      body: { username: a.user.username, password: "correct horse battery" },
    });
    const out = await api(url, "POST", "/v1/auth/logout", { body: { refreshToken: a.refreshToken } });
    assert.equal(out.status, 204);
    assert.equal((await api(url, "GET", "/v1/users/me", { token: a.accessToken })).status, 401);
    assert.equal((await api(url, "POST", "/v1/auth/refresh", { body: { refreshToken: a.refreshToken } })).status, 401);
    assert.equal((await api(url, "GET", "/v1/users/me", { token: b.body.accessToken })).status, 200);
    await assert.rejects(connectDevice(url, a.accessToken), /unauthorized/);
  });

  test("every bad token is unauthorized, over HTTP and at the socket handshake", async () => {
    const user = await registerUser(url);
    const { sid } = jwt.decode(user.accessToken) as { sid: string };
    const claims = { sid, sub: user.user.id };
    const sign = (secret: string, options: jwt.SignOptions) => jwt.sign(claims, secret, options);
    const good = { algorithm: "HS256", issuer: "chat-gateway", audience: "chat-gateway", expiresIn: 60 } as const;
    const bad: Record<string, string | undefined> = {
      missing: undefined,
      garbage: "not-a-jwt",
      wrongSignature: sign("another-secret-that-is-long-enough-0123456789", good),
      expired: sign(TEST_JWT_SECRET, { ...good, expiresIn: -10 }),
      wrongIssuer: sign(TEST_JWT_SECRET, { ...good, issuer: "someone-else" }),
      wrongAudience: sign(TEST_JWT_SECRET, { ...good, audience: "someone-else" }),
      algNone: `${Buffer.from('{"alg":"none","typ":"JWT"}').toString("base64url")}.${Buffer.from(
        JSON.stringify({
          ...claims,
          iss: "chat-gateway",
          aud: "chat-gateway",
          exp: Math.floor(Date.now() / 1000) + 60,
        }),
      ).toString("base64url")}.`,
      wrongAlgorithm: sign(TEST_JWT_SECRET, { ...good, algorithm: "HS512" }),
    };
    for (const [name, token] of Object.entries(bad)) {
      const res = await api<{ error: { code: string } }>(url, "GET", "/v1/users/me", token ? { token } : {});
      assert.equal(res.status, 401, name);
      assert.equal(res.body.error.code, "unauthorized", name);
      await assert.rejects(connectDevice(url, token ?? ""), /^Error: unauthorized$/, name);
    }
    // The same claims signed correctly work: the checks above failed for their reason only.
    assert.equal((await api(url, "GET", "/v1/users/me", { token: sign(TEST_JWT_SECRET, good) })).status, 200);
  });
});
