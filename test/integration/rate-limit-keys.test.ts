// Rate-limit keys that a client can neither forge nor share with everyone: the client address comes from
// X-Forwarded-For only as far as TRUST_PROXY trusts it, failed logins are counted per account, refreshes per login.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { AuthResult } from "@chat-gateway/protocol";
import { api, uniqueName } from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";

type ErrorBody = { error: { code: string; details?: { retryAfterMs?: number } } };

const login = (url: string, username: string, password: string, forwardedFor?: string) =>
  api<ErrorBody & AuthResult>(url, "POST", "/v1/auth/login", {
    body: { username, password },
    ...(forwardedFor === undefined ? {} : { headers: { "x-forwarded-for": forwardedFor } }),
  });

const register = async (url: string, forwardedFor: string, username = uniqueName()) => {
  const res = await api<AuthResult>(url, "POST", "/v1/auth/register", {
    body: { username, password: "correct horse battery" },
    headers: { "x-forwarded-for": forwardedFor },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
};

const randomIp = () => Array.from({ length: 4 }, () => Math.floor(Math.random() * 250) + 1).join(".");

describe("rate limits without a trusted proxy (TRUST_PROXY unset)", () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startGateways(1, { adapter: "memory", env: { RATE_LIMITS: "on", RATE_LIMIT_LOGIN_PER_MIN: "5" } });
  });
  after(() => cluster.cleanup());

  test("a forged X-Forwarded-For does not escape the per-IP limit", async () => {
    const url = cluster.urls[0]!;
    for (let i = 0; i < 5; i++) {
      const res = await login(url, uniqueName(), "wrong password", randomIp());
      assert.equal(res.status, 401, `attempt ${i + 1}`);
    }
    const over = await login(url, uniqueName(), "wrong password", randomIp());
    assert.equal(over.status, 429);
    assert.equal(over.body.error.code, "rate_limited");
    assert.ok((over.body.error.details?.retryAfterMs ?? 0) > 0);
  });
});

describe("rate limits behind one proxy (TRUST_PROXY=1)", () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startGateways(1, {
      adapter: "memory",
      env: {
        RATE_LIMITS: "on",
        TRUST_PROXY: "1",
        RATE_LIMIT_LOGIN_PER_MIN: "10",
        RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT: "3",
        RATE_LIMIT_REFRESH_PER_MIN: "3",
      },
    });
  });
  after(() => cluster.cleanup());

  test("the right-most X-Forwarded-For hop is the client: what the client wrote to its left is ignored", async () => {
    const url = cluster.urls[0]!;
    const client = randomIp();
    // The proxy appends the address it saw; whatever the client claimed stays to its left and changes nothing.
    for (let i = 0; i < 10; i++) {
      const res = await login(url, uniqueName(), "wrong password", `${randomIp()}, ${client}`);
      assert.equal(res.status, 401, `attempt ${i + 1}`);
    }
    const over = await login(url, uniqueName(), "wrong password", `${randomIp()}, ${client}`);
    assert.equal(over.status, 429);
    assert.equal(over.body.error.code, "rate_limited");
    // Another client behind the same proxy has its own budget.
    const other = await login(url, uniqueName(), "wrong password", `${client}, ${randomIp()}`);
    assert.equal(other.status, 401);
  });

  test("failed logins are limited per account; another account on the same IP still logs in", async () => {
    const url = cluster.urls[0]!;
    const office = randomIp();
    const alice = await register(url, office);
    const bob = await register(url, office);
    for (let i = 0; i < 3; i++) {
      assert.equal((await login(url, alice.user.username, "wrong password", office)).status, 401);
    }
    // Locked for a while, even with the right password (and in any letter case).
    const locked = await login(url, alice.user.username.toUpperCase(), "correct horse battery", office);
    assert.equal(locked.status, 429);
    assert.equal(locked.body.error.code, "rate_limited");
    assert.ok((locked.body.error.details?.retryAfterMs ?? 0) > 60_000, "the lockout lasts the failure window");
    // Successful logins do not count: bob logs in more often than the failure limit.
    for (let i = 0; i < 4; i++) {
      const ok = await login(url, bob.user.username, "correct horse battery", office);
      assert.equal(ok.status, 200, `bob's login ${i + 1}: ${JSON.stringify(ok.body)}`);
    }
  });

  test("refresh is limited per login, not per IP", async () => {
    const url = cluster.urls[0]!;
    const office = randomIp();
    const carol = await register(url, office);
    const dave = await register(url, office);
    let token = carol.refreshToken;
    for (let i = 0; i < 3; i++) {
      const res = await api<AuthResult>(url, "POST", "/v1/auth/refresh", {
        body: { refreshToken: token },
        headers: { "x-forwarded-for": office },
      });
      assert.equal(res.status, 200, `refresh ${i + 1}`);
      token = res.body.refreshToken;
    }
    const over = await api<ErrorBody>(url, "POST", "/v1/auth/refresh", {
      body: { refreshToken: token },
      headers: { "x-forwarded-for": office },
    });
    assert.equal(over.status, 429);
    assert.equal(over.body.error.code, "rate_limited");
    const daveRefresh = await api(url, "POST", "/v1/auth/refresh", {
      body: { refreshToken: dave.refreshToken },
      headers: { "x-forwarded-for": office },
    });
    assert.equal(daveRefresh.status, 200);
  });
});
