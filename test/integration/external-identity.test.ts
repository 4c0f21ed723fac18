// Tokens of an external identity provider (JWT_JWKS_URL), against two real gateway pods and a local JWKS server:
// RS256 and ES256 tokens sign in over HTTP and the Socket.IO handshake (and extend a live socket with auth:refresh),
// mapping `sub` to one gateway user created on first sight; every algorithm confusion, a wrong iss/aud and an expired
// token are `unauthorized`; key rotation refetches on an unknown kid, at most once per cooldown, and a removed key's
// tokens are refused once the new set is fetched; OWN_ACCOUNTS=off refuses register/login/refresh.
import assert from "node:assert/strict";
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import jwt from "jsonwebtoken";
import {
  api,
  connectDevice,
  createConversation,
  type Device,
  registerUser,
  request,
  uniqueName,
  waitForEvent,
} from "../helpers/clients.js";
import { type Cluster, startGateways, TEST_JWT_SECRET } from "../helpers/gateways.js";
import {
  IDP_AUDIENCE,
  IDP_ISSUER,
  type IdentityProvider,
  type ProviderKey,
  startIdentityProvider,
} from "../helpers/identity-provider.js";

const COOLDOWN_MS = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");

interface Me {
  id: string;
  username: string;
  displayName: string;
}

describe("identity from an external provider", () => {
  let idp: IdentityProvider;
  let cluster: Cluster;
  let rsa: ProviderKey;
  let ec: ProviderKey;
  const devices: Device[] = [];

  before(async () => {
    idp = await startIdentityProvider();
    rsa = await idp.newKey("RS256");
    ec = await idp.newKey("ES256");
    idp.publish([rsa, ec]);
    cluster = await startGateways(2, { env: idp.env({ JWT_JWKS_COOLDOWN_MS: String(COOLDOWN_MS) }) });
  });
  after(async () => {
    for (const d of devices) d.close();
    await cluster?.cleanup();
    await idp?.close();
  });

  const connect = async (url: string, token: string) => {
    const device = await connectDevice(url, token);
    devices.push(device);
    return device;
  };
  const me = (url: string, token: string) => api<Me>(url, "GET", "/v1/users/me", { token });
  /** Both the HTTP API and the socket handshake refuse the token as `unauthorized`. */
  const assertRefused = async (token: string, what: string) => {
    for (const url of cluster.urls) {
      const res = await me(url, token);
      assert.equal(res.status, 401, `${what}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
      assert.equal((res.body as unknown as { error: { code: string } }).error.code, "unauthorized");
      await assert.rejects(connectDevice(url, token), { message: "unauthorized" }, `${what}: handshake`);
    }
  };

  test("RS256 and ES256 tokens: handshake and send, one user per sub created on first sight", async () => {
    const [u0, u1] = cluster.urls as [string, string];
    const handle = uniqueName("ext");
    const subject = `auth0|${randomUUID()}`;
    const rsToken = await idp.token(rsa, { sub: subject, preferred_username: handle, name: "Ada Lovelace" });
    // Two pods seeing the same new identity at once agree on one user.
    const [first, second] = await Promise.all([me(u0, rsToken), me(u1, rsToken)]);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(second.body.id, first.body.id);
    assert.equal(first.body.username, handle);
    assert.equal(first.body.displayName, "Ada Lovelace");

    const esToken = await idp.token(ec, { sub: subject });
    assert.equal((await me(u1, esToken)).body.id, first.body.id, "the same sub with another key is the same user");

    // An own account talks with the external one, across pods.
    const friend = await registerUser(u0);
    const conversation = await createConversation(u0, friend.accessToken, { type: "direct", userId: first.body.id });
    const friendDevice = await connect(u0, friend.accessToken);
    for (const [token, url] of [
      [rsToken, u1],
      [esToken, u0],
    ] as const) {
      const device = await connect(url, token);
      const clientMsgId = randomUUID();
      const received = waitForEvent(friendDevice, "message:new", (m) => m.clientMsgId === clientMsgId);
      const answer = await request(device, "message:send", {
        conversationId: conversation.id,
        clientMsgId,
        content: "hello from the provider",
      });
      assert.equal(answer.ok, true, JSON.stringify(answer));
      assert.equal(answer.message.senderId, first.body.id);
      assert.equal((await received).id, answer.message.id);
    }
  });

  test("usernames are derived safely and kept unique", async () => {
    const [u0] = cluster.urls as [string];
    const taken = (await registerUser(u0)).user.username;
    const clash = await me(u0, await idp.token(rsa, { sub: randomUUID(), preferred_username: taken }));
    assert.equal(clash.status, 200);
    assert.notEqual(clash.body.username, taken);
    assert.match(clash.body.username, new RegExp(`^${taken.slice(0, 25)}-[0-9a-f]{6}$`));

    const local = uniqueName("mail");
    const fromEmail = await me(u0, await idp.token(rsa, { sub: randomUUID(), email: `${local}@example.com` }));
    assert.equal(fromEmail.body.username, local);

    const odd = await me(
      u0,
      await idp.token(rsa, { sub: randomUUID(), preferred_username: "Robert'); DROP TABLE users;--", name: "\u0000" }),
    );
    assert.equal(odd.status, 200);
    assert.match(odd.body.username, /^user-[0-9a-f]{12}$/);
    assert.equal(odd.body.displayName, odd.body.username, "a name with control characters is not used");
  });

  test("alg none, HS256 with the public key, wrong iss or aud, expired: unauthorized", async () => {
    const sub = randomUUID();
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: IDP_ISSUER, aud: IDP_AUDIENCE, sub, iat: now, exp: now + 600 };
    const unsigned = `${b64({ alg: "none", typ: "JWT", kid: rsa.kid })}.${b64(claims)}.`;
    await assertRefused(unsigned, "alg none");

    // The classic confusion: HS256 with the provider's public key (PEM) as the HMAC secret, under either issuer.
    for (const iss of [IDP_ISSUER, "chat-gateway"]) {
      const body = `${b64({ alg: "HS256", typ: "JWT", kid: rsa.kid })}.${b64({ ...claims, iss, aud: IDP_AUDIENCE })}`;
      const signature = createHmac("sha256", rsa.publicPem).update(body).digest("base64url");
      await assertRefused(`${body}.${signature}`, `HS256 with the public key as secret, iss ${iss}`);
    }
    // A token signed with the gateway's own HS256 secret but claiming the provider: never checked against the secret.
    const ownSecretAsProvider = jwt.sign({ sid: randomUUID() }, TEST_JWT_SECRET, {
      algorithm: "HS256",
      subject: sub,
      issuer: IDP_ISSUER,
      audience: IDP_AUDIENCE,
      expiresIn: 600,
    });
    await assertRefused(ownSecretAsProvider, "HS256 with the gateway secret and the provider's iss");
    // A provider-signed token claiming the gateway's own issuer: never checked against the JWKS.
    await assertRefused(
      await idp.token(rsa, { sub, iss: "chat-gateway", aud: "chat-gateway", sid: randomUUID() }),
      "RS256 with the gateway's iss",
    );
    await assertRefused(await idp.token(rsa, { sub, iss: "https://other.example.test/" }), "wrong iss");
    await assertRefused(await idp.token(rsa, { sub, aud: "someone-else" }), "wrong aud");
    await assertRefused(await idp.token(ec, { sub, iat: now - 1200, exp: now - 300 }), "expired");
    await assertRefused(await idp.token(rsa, { sub, iat: undefined }), "no iat");
    // A key the provider does not publish, with a kid it does.
    const stranger = await idp.newKey("RS256");
    await assertRefused(await idp.token({ ...stranger, kid: rsa.kid }, { sub }), "signed by another key");
  });

  test("auth:refresh on a live socket takes a newer token of the same identity, not another user's", async () => {
    const [u0] = cluster.urls as [string];
    const sub = randomUUID();
    const now = Math.floor(Date.now() / 1000);
    const device = await connect(u0, await idp.token(rsa, { sub, exp: now + 120 }));
    const newer = await idp.token(ec, { sub, exp: now + 900 });
    const answer = await request(device, "auth:refresh", { token: newer });
    assert.equal(answer.ok, true, JSON.stringify(answer));
    assert.equal(Date.parse(answer.expiresAt), (now + 900) * 1000);

    const other = await request(device, "auth:refresh", {
      token: await idp.token(rsa, { sub: randomUUID() }),
    });
    assert.equal(other.error?.code, "unauthorized");
    const own = await request(device, "auth:refresh", {
      token: (await registerUser(u0)).accessToken,
    });
    assert.equal(own.error?.code, "unauthorized");
    assert.equal(device.connected, true, "a refused refresh leaves the socket as it was");
  });

  test("key rotation: an unknown kid refetches (once per cooldown), a removed key is refused after the refetch", async () => {
    const [u0, u1] = cluster.urls as [string, string];
    const sub = randomUUID();
    const oldToken = await idp.token(rsa, { sub });
    assert.equal((await me(u0, oldToken)).status, 200);

    const next = await idp.newKey("RS256");
    idp.publish([next, ec]);
    await sleep(COOLDOWN_MS + 200);
    const before = idp.fetches();
    const newToken = await idp.token(next, { sub });
    assert.equal((await me(u0, newToken)).status, 200, "the new kid is fetched and accepted");
    assert.equal(idp.fetches(), before + 1, "exactly one fetch for the unknown kid");

    // A burst of tokens with kids nobody published: within the cooldown, no further fetch.
    const bogus = await Promise.all(
      Array.from({ length: 20 }, () => idp.token({ ...next, kid: `nope-${randomBytes(4).toString("hex")}` }, { sub })),
    );
    const answers = await Promise.all(bogus.map((t) => me(u0, t)));
    assert.ok(answers.every((a) => a.status === 401));
    assert.equal(idp.fetches(), before + 1, "unknown kids within the cooldown do not refetch");

    // Pod 0 has the new set: the removed key's token is refused there at once. Pod 1 still holds the old set until
    // the unknown kid of a new token makes it refetch; after that, the removed key is refused there too.
    await assertRefusedOn(u0, oldToken);
    assert.equal((await me(u1, newToken)).status, 200);
    await assertRefusedOn(u1, oldToken);
  });

  async function assertRefusedOn(url: string, token: string) {
    const res = await me(url, token);
    assert.equal(res.status, 401, JSON.stringify(res.body));
    await assert.rejects(connectDevice(url, token), { message: "unauthorized" });
  }
});

describe("a provider-only gateway (OWN_ACCOUNTS=off) and a provider that goes down", () => {
  let idp: IdentityProvider;
  let cluster: Cluster;
  before(async () => {
    idp = await startIdentityProvider();
    cluster = await startGateways(1, {
      adapter: "memory",
      env: idp.env({ OWN_ACCOUNTS: "off", JWT_JWKS_COOLDOWN_MS: "500", JWT_JWKS_CACHE_MAX_AGE_MS: "1000" }),
    });
  });
  after(async () => {
    await cluster?.cleanup();
    await idp?.close();
  });

  test("no keys yet and the provider down: unavailable; keys held keep working while it is down", async () => {
    const [url] = cluster.urls as [string];
    const key = await idp.newKey("ES256");
    idp.publish([key]);
    idp.failing(true);
    const token = await idp.token(key, { sub: randomUUID() });
    const down = await api<{ error: { code: string } }>(url, "GET", "/v1/users/me", { token });
    assert.equal(down.status, 503);
    assert.equal(down.body.error.code, "unavailable");
    await assert.rejects(connectDevice(url, token), { message: "unavailable" });

    idp.failing(false);
    await sleep(600);
    assert.equal((await api(url, "GET", "/v1/users/me", { token })).status, 200);

    // Down again, past the cache age: the held key still verifies; a kid it does not hold is refused, not a 503.
    idp.failing(true);
    await sleep(1100);
    assert.equal((await api(url, "GET", "/v1/users/me", { token })).status, 200);
    const unknown = await idp.token(await idp.newKey("RS256"), { sub: randomUUID() });
    assert.equal((await api(url, "GET", "/v1/users/me", { token: unknown })).status, 401);
    idp.failing(false);
  });

  test("register, login and refresh are forbidden; provider tokens work", async () => {
    const [url] = cluster.urls as [string];
    const body = { username: uniqueName(), password: "correct horse battery" };
    for (const [path, payload] of [
      ["/v1/auth/register", body],
      ["/v1/auth/login", body],
      ["/v1/auth/refresh", { refreshToken: "x".repeat(43) }],
    ] as const) {
      const res = await api<{ error: { code: string } }>(url, "POST", path, { body: payload });
      assert.equal(res.status, 403, path);
      assert.equal(res.body.error.code, "forbidden");
    }
    const key = await idp.newKey("ES256");
    idp.publish([key]);
    await sleep(600);
    const res = await api(url, "GET", "/v1/users/me", { token: await idp.token(key, { sub: randomUUID() }) });
    assert.equal(res.status, 200);
  });
});
