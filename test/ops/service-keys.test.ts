// Service tokens: each key (kid) may only post as the sender names it is bound to, tokens must be short-lived
// (exp - iat within SERVICE_TOKEN_MAX_TTL_S, both present), the legacy SERVICE_JWT_SECRET still works for any name,
// and services are rate limited per key.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import jwt from "jsonwebtoken";
import { loadConfig, parseServiceKeys } from "../../src/config.js";
import { api, createConversation, registerUser } from "../helpers/clients.js";
import { type Cluster, startGateways, TEST_JWT_SECRET } from "../helpers/gateways.js";

const BILLING_SECRET = "billing-key-secret-that-is-long-enough-0123456789";
const ALERTS_SECRET = "alerts-key-secret-that-is-long-enough-01234567890";
const LEGACY_SECRET = "legacy-service-secret-that-is-long-enough-012345";

interface TokenOptions {
  kid?: string;
  secret?: string;
  iat?: number | null;
  exp?: number | null;
}

function serviceToken(sub: string, o: TokenOptions = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = { role: "service", sub, iss: "chat-gateway", aud: "chat-gateway" };
  if (o.iat !== null) payload.iat = o.iat ?? now;
  if (o.exp !== null) payload.exp = o.exp ?? now + 300;
  return jwt.sign(payload, o.secret ?? BILLING_SECRET, {
    algorithm: "HS256",
    noTimestamp: o.iat === null, // otherwise jsonwebtoken keeps the iat set above
    ...(o.kid === undefined ? {} : { keyid: o.kid }),
  });
}

describe("service keys", () => {
  let cluster: Cluster;
  let url: string;
  let path: string;
  let n = 0;
  const post = (token: string) =>
    api<{ error?: { code: string; details?: { retryAfterMs?: number } } }>(url, "POST", path, {
      token,
      body: { clientMsgId: `svc-${++n}`, content: "notice" },
    });

  before(async () => {
    cluster = await startGateways(1, {
      adapter: "memory",
      env: {
        SERVICE_KEYS: JSON.stringify({
          "billing-1": { secret: BILLING_SECRET, names: ["billing", "invoices"] },
          "alerts-1": { secret: ALERTS_SECRET, names: ["alerts"] },
        }),
        SERVICE_JWT_SECRET: LEGACY_SECRET,
        SERVICE_TOKEN_MAX_TTL_S: "600",
        RATE_LIMITS: "on",
        RATE_LIMIT_SERVICE_PER_SEC: "5",
      },
    });
    url = cluster.urls[0]!;
    const alice = await registerUser(url);
    const bob = await registerUser(url);
    const conversation = await createConversation(url, alice.accessToken, { type: "direct", userId: bob.user.id });
    path = `/v1/conversations/${conversation.id}/messages`;
  });
  after(() => cluster.cleanup());

  test("a key posts only as the names bound to it", async () => {
    assert.equal((await post(serviceToken("billing", { kid: "billing-1" }))).status, 201);
    assert.equal((await post(serviceToken("invoices", { kid: "billing-1" }))).status, 201);
    assert.equal((await post(serviceToken("alerts", { kid: "alerts-1", secret: ALERTS_SECRET }))).status, 201);
    // Another key's name, an unknown kid, a kid with another key's secret: all unauthorized.
    const refused = {
      otherName: serviceToken("alerts", { kid: "billing-1" }),
      unknownKid: serviceToken("billing", { kid: "billing-2" }),
      wrongSecret: serviceToken("billing", { kid: "billing-1", secret: ALERTS_SECRET }),
      noKidWithKeySecret: serviceToken("billing", { secret: BILLING_SECRET }),
    };
    for (const [name, token] of Object.entries(refused)) {
      const res = await post(token);
      assert.equal(res.status, 401, name);
      assert.equal(res.body.error?.code, "unauthorized", name);
    }
  });

  test("the legacy SERVICE_JWT_SECRET (no kid) still posts, as any name", async () => {
    assert.equal((await post(serviceToken("anything-else", { secret: LEGACY_SECRET }))).status, 201);
  });

  test("service tokens must be short-lived: exp and iat present, at most SERVICE_TOKEN_MAX_TTL_S apart", async () => {
    const now = Math.floor(Date.now() / 1000);
    assert.equal((await post(serviceToken("billing", { kid: "billing-1", exp: now + 600 }))).status, 201);
    const refused = {
      tooLong: serviceToken("billing", { kid: "billing-1", exp: now + 601 }),
      noExp: serviceToken("billing", { kid: "billing-1", exp: null }),
      noIat: serviceToken("billing", { kid: "billing-1", iat: null }),
      issuedInTheFuture: serviceToken("billing", { kid: "billing-1", iat: now + 3600, exp: now + 3900 }),
      legacyTooLong: serviceToken("x", { secret: LEGACY_SECRET, exp: now + 86_400 }),
    };
    for (const [name, token] of Object.entries(refused)) {
      const res = await post(token);
      assert.equal(res.status, 401, name);
      assert.equal(res.body.error?.code, "unauthorized", name);
    }
  });

  test("services are rate limited per key", async () => {
    await new Promise((r) => setTimeout(r, 1_100)); // a fresh one-second window
    const alerts = serviceToken("alerts", { kid: "alerts-1", secret: ALERTS_SECRET });
    const burst = await Promise.all(Array.from({ length: 8 }, () => post(alerts)));
    const limited = burst.filter((r) => r.status === 429);
    assert.ok(limited.length >= 3, `statuses: ${burst.map((r) => r.status).join(",")}`);
    assert.equal(limited[0]!.body.error?.code, "rate_limited");
    assert.ok((limited[0]!.body.error?.details?.retryAfterMs ?? 0) > 0);
    // Another key is not affected.
    assert.equal((await post(serviceToken("billing", { kid: "billing-1" }))).status, 201);
  });
});

describe("SERVICE_KEYS parsing", () => {
  const base = { JWT_SECRET: TEST_JWT_SECRET, DATABASE_URL: "postgresql://x@127.0.0.1/x" };
  test("JSON and the kid:secret:names list give the same keys", () => {
    const list = loadConfig({ ...base, SERVICE_KEYS: `billing-1:${BILLING_SECRET}:billing|invoices` });
    const json = loadConfig({
      ...base,
      SERVICE_KEYS: JSON.stringify({ "billing-1": { secret: BILLING_SECRET, names: ["billing", "invoices"] } }),
    });
    const expected = [{ kid: "billing-1", secret: BILLING_SECRET, names: ["billing", "invoices"] }];
    assert.deepEqual(list.SERVICE_KEYS, expected);
    assert.deepEqual(json.SERVICE_KEYS, expected);
    // A key marked admin may sign admin tokens (the moderation API), in either form.
    const admin = [{ kid: "mod-1", secret: BILLING_SECRET, names: ["trust-safety"], admin: true }];
    assert.deepEqual(parseServiceKeys(`mod-1:${BILLING_SECRET}:trust-safety:admin`), admin);
    const adminJson = { "mod-1": { secret: BILLING_SECRET, names: ["trust-safety"], admin: true } };
    assert.deepEqual(parseServiceKeys(JSON.stringify(adminJson)), admin);
    assert.equal(typeof parseServiceKeys(`mod-1:${BILLING_SECRET}:trust-safety:root`), "string");
  });
  test("bad keys are refused at start", () => {
    for (const bad of ["billing-1:short:billing", `billing-1:${BILLING_SECRET}`, `a:${BILLING_SECRET}:Bad Name`, "{"]) {
      assert.equal(typeof parseServiceKeys(bad), "string", bad);
      assert.throws(() => loadConfig({ ...base, SERVICE_KEYS: bad }), /SERVICE_KEYS/);
    }
  });
});
