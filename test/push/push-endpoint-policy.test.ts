// Web Push endpoints are URLs the client picks and the gateway POSTs to: only allowlisted push-service hosts, never a
// private or local address (checked at subscribe time and again when sending), and at most
// PUSH_MAX_SUBSCRIPTIONS_PER_USER per user (one more replaces the oldest).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { randomUUID } from "node:crypto";
import pg from "pg";
import { acceptConversation, api, createConversation, eventually, registerUser } from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";
import { type PushServices, send, settle, startPushServices } from "../helpers/push.js";

const GRACE_MS = 300;

describe("push endpoint policy", () => {
  let services: PushServices;
  let strict: Cluster;
  let db: pg.Client;
  before(async () => {
    services = await startPushServices();
    const fake = new URL(services.webPush.origin).host; // 127.0.0.1:<port>
    // No PUSH_ALLOW_PRIVATE_ENDPOINTS: the production rule, with a few private hosts allowlisted to show that the
    // address check holds even for them.
    strict = await startGateways(1, {
      adapter: "memory",
      env: {
        NODE_EXTRA_CA_CERTS: services.env.NODE_EXTRA_CA_CERTS!,
        VAPID_PUBLIC_KEY: services.env.VAPID_PUBLIC_KEY!,
        VAPID_PRIVATE_KEY: services.env.VAPID_PRIVATE_KEY!,
        PUSH_GRACE_MS: String(GRACE_MS),
        PUSH_RETRY_BASE_MS: "100",
        PUSH_MAX_ATTEMPTS: "2",
        PUSH_ENDPOINT_ALLOWLIST: [
          "push.example.com",
          "*.notify.windows.com",
          "localhost",
          "127.0.0.1",
          fake,
          "[::1]",
          "169.254.169.254",
          "10.1.2.3",
          "[::ffff:127.0.0.1]",
        ].join(","),
        PUSH_MAX_SUBSCRIPTIONS_PER_USER: "3",
      },
    });
    db = new pg.Client({ connectionString: strict.databaseUrl });
    await db.connect();
  });
  after(async () => {
    await db?.end();
    await strict?.cleanup();
    await services?.stop();
  });

  const subscribe = (url: string, token: string, endpoint: string) =>
    api<{ id: string; error: { code: string; details?: { field: string }[] } }>(url, "POST", "/v1/push/subscriptions", {
      token,
      body: { type: "webpush", endpoint, keys: services.webPush.subscribe().keys },
    });

  test("private, loopback and link-local endpoints are bad_request, even when allowlisted", async () => {
    const url = strict.urls[0]!;
    const user = await registerUser(url);
    for (const endpoint of [
      "https://localhost/push/1", // a name resolving to loopback
      "https://127.0.0.1/push/1",
      services.webPush.subscribe().endpoint, // a live service, on loopback
      "https://[::1]/push/1",
      "https://169.254.169.254/latest/meta-data",
      "https://10.1.2.3/push/1",
      "https://[::ffff:127.0.0.1]/push/1",
    ]) {
      const res = await subscribe(url, user.accessToken, endpoint);
      assert.equal(res.status, 400, endpoint);
      assert.equal(res.body.error.code, "bad_request", endpoint);
      assert.equal(res.body.error.details?.[0]?.field, "endpoint");
    }
    const { rows } = await db.query("SELECT 1 FROM push_subscriptions WHERE user_id = $1", [user.user.id]);
    assert.equal(rows.length, 0, "nothing stored");
  });

  test("hosts off the allowlist, other ports and other schemes are bad_request", async () => {
    const url = strict.urls[0]!;
    const user = await registerUser(url);
    for (const endpoint of [
      "https://evil.example.net/push/1",
      "https://push.example.com.evil.example.net/push/1",
      "https://notpush.example.com/push/1",
      "https://push.example.com:8443/push/1",
      "https://notify.windows.com/push/1", // *.host means subdomains only
      "https://user:pw@push.example.com/push/1",
      "http://push.example.com/push/1",
    ]) {
      const res = await subscribe(url, user.accessToken, endpoint);
      assert.equal(res.status, 400, endpoint);
      assert.equal(res.body.error.code, "bad_request", endpoint);
    }
  });

  test("a stored private endpoint is refused again at send time: nothing reaches it", async () => {
    const url = strict.urls[0]!;
    const [alice, bob] = await Promise.all([registerUser(url), registerUser(url)]);
    const conversation = await createConversation(url, alice.accessToken, { type: "direct", userId: bob.user.id });
    await acceptConversation(url, bob.accessToken, conversation.id);
    // Registered before the policy existed (or while a name resolved elsewhere): straight into the database.
    const sub = services.webPush.subscribe();
    await db.query(
      `INSERT INTO push_subscriptions (id, user_id, type, endpoint, p256dh, auth) VALUES ($1, $2, 'webpush', $3, $4, $5)`,
      [randomUUID(), bob.user.id, sub.endpoint, sub.keys.p256dh, sub.keys.auth],
    );
    await send(url, alice.accessToken, conversation.id, "hello");
    const gateway = strict.gateways[0]!;
    await eventually(
      () => gateway.logs.some((l) => l.includes('"push rejected"') && l.includes(conversation.id)),
      20_000,
      "the delivery refused",
    );
    await settle(GRACE_MS);
    assert.equal(services.webPush.for(sub.id).length, 0);
    assert.deepEqual(services.webPush.refused, []);
  });

  test("at most PUSH_MAX_SUBSCRIPTIONS_PER_USER per user: one more replaces the oldest", async () => {
    // The cap does not depend on the address rule: a gateway that allows the fake service's private address.
    const cluster = await startGateways(1, {
      adapter: "memory",
      env: { ...services.env, PUSH_GRACE_MS: String(GRACE_MS), PUSH_MAX_SUBSCRIPTIONS_PER_USER: "3" },
    });
    try {
      const url = cluster.urls[0]!;
      const user = await registerUser(url);
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await subscribe(url, user.accessToken, services.webPush.subscribe().endpoint);
        assert.equal(res.status, 201);
        ids.push(res.body.id);
        await new Promise((r) => setTimeout(r, 5));
      }
      const userDb = new pg.Client({ connectionString: cluster.databaseUrl });
      await userDb.connect();
      try {
        const { rows } = await userDb.query<{ id: string }>(
          "SELECT id::text FROM push_subscriptions WHERE user_id = $1 ORDER BY created_at",
          [user.user.id],
        );
        assert.deepEqual(
          rows.map((r) => r.id),
          ids.slice(2),
          "the three newest",
        );
      } finally {
        await userDb.end();
      }
      // The replaced ones are gone for their owner too.
      const deleted = await api(url, "DELETE", `/v1/push/subscriptions/${ids[0]}`, { token: user.accessToken });
      assert.equal(deleted.status, 404);
    } finally {
      await cluster.cleanup();
    }
  });
});
