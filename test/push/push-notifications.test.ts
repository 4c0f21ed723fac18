// Push notifications end to end over BullMQ on the real Redis: two gateway processes, a fake Web Push service over
// HTTPS that verifies VAPID and decrypts, a fake FCM with its OAuth token endpoint, and the operator webhook.
// Pushes go only to members whose devices did not get the message within the grace period, once per burst.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Queue } from "bullmq";
import pg from "pg";
import {
  acceptConversation,
  api,
  connectDevice,
  createConversation,
  type Device,
  eventually,
  registerUser,
  request,
} from "../helpers/clients.js";
import { type Cluster, REDIS_URL, startGateways } from "../helpers/gateways.js";
import { pushLogs, type PushServices, send, settle, skipLogged, startPushServices } from "../helpers/push.js";

const GRACE_MS = 1500;

describe("push notifications (BullMQ, two pods)", () => {
  let services: PushServices;
  let cluster: Cluster;
  const devices: Device[] = [];

  before(async () => {
    services = await startPushServices();
    cluster = await startGateways(2, {
      adapter: "sharded",
      env: { ...services.env, PUSH_GRACE_MS: String(GRACE_MS) },
    });
  });
  after(async () => {
    for (const d of devices) d.close();
    await cluster?.cleanup();
    if (services) {
      const queue = new Queue("push", { connection: { url: REDIS_URL }, prefix: services.env.PUSH_QUEUE_PREFIX });
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
      await services.stop();
    }
  });

  /** A sender and a recipient in a direct conversation; the recipient registered Web Push and FCM. */
  async function pair() {
    const [u0, u1] = cluster.urls as [string, string];
    const alice = await registerUser(u0);
    const bob = await registerUser(u1);
    const conversation = await createConversation(u0, alice.accessToken, { type: "direct", userId: bob.user.id });
    await acceptConversation(u1, bob.accessToken, conversation.id);
    const web = services.webPush.subscribe();
    const fcmToken = `fcm-${bob.user.id}`;
    for (const body of [
      { type: "webpush", endpoint: web.endpoint, keys: web.keys },
      { type: "fcm", token: fcmToken },
    ]) {
      const res = await api(u1, "POST", "/v1/push/subscriptions", { token: bob.accessToken, body });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
    const received = () => ({
      web: services.webPush.for(web.id),
      fcm: services.fcm.for(fcmToken),
      hook: services.webhook.for(bob.user.id),
    });
    return { u0, u1, alice, bob, conversation, web, fcmToken, received };
  }

  function assertNothingRefused() {
    assert.deepEqual(services.webPush.refused, [], "web push service refused a request");
    assert.deepEqual(services.fcm.refused, [], "FCM refused a request");
    assert.deepEqual(services.webhook.refused, [], "webhook receiver refused a request");
  }

  test("subscription endpoints: the VAPID key, create, validation, delete only your own", async () => {
    const [u0, u1] = cluster.urls as [string, string];
    const alice = await registerUser(u0);
    const mallory = await registerUser(u1);
    const key = await api<{ publicKey: string }>(u0, "GET", "/v1/push/vapid-public-key", { token: alice.accessToken });
    assert.equal(key.status, 200);
    assert.equal(key.body.publicKey, services.vapid.publicKey);
    assert.equal((await api(u0, "GET", "/v1/push/vapid-public-key")).status, 401);

    const web = services.webPush.subscribe();
    const created = await api<{ id: string }>(u0, "POST", "/v1/push/subscriptions", {
      token: alice.accessToken,
      body: { type: "webpush", endpoint: web.endpoint, keys: web.keys },
    });
    assert.equal(created.status, 201);
    assert.match(created.body.id, /^[0-9a-f-]{36}$/);

    for (const body of [
      { type: "webpush", endpoint: "http://insecure.example/push", keys: web.keys },
      { type: "webpush", endpoint: web.endpoint, keys: { p256dh: "short", auth: web.keys.auth } },
      { type: "fcm", token: "" },
      { type: "carrier-pigeon", token: "x" },
    ]) {
      const res = await api<{ error: { code: string } }>(u0, "POST", "/v1/push/subscriptions", {
        token: alice.accessToken,
        body,
      });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.error.code, "bad_request");
    }

    const path = `/v1/push/subscriptions/${created.body.id}`;
    const theirs = await api<{ error: { code: string } }>(u1, "DELETE", path, { token: mallory.accessToken });
    assert.equal(theirs.status, 404);
    assert.equal(theirs.body.error.code, "not_found");
    assert.equal(
      (await api(u1, "DELETE", "/v1/push/subscriptions/not-a-uuid", { token: alice.accessToken })).status,
      404,
    );
    assert.equal((await api(u0, "DELETE", path, { token: alice.accessToken })).status, 204);
    assert.equal((await api(u0, "DELETE", path, { token: alice.accessToken })).status, 404);
  });

  test("an offline member gets exactly one push on each subscription, without the message text", async () => {
    const { u0, alice, bob, conversation, received } = await pair();
    await send(u0, alice.accessToken, conversation.id, "the secret plan");

    await eventually(
      () => {
        const r = received();
        return r.web.length >= 1 && r.fcm.length >= 1 && r.hook.length >= 1;
      },
      30_000,
      "one push on each provider",
    );
    await settle(GRACE_MS);
    const { web, fcm, hook } = received();
    assert.equal(web.length, 1);
    assert.equal(fcm.length, 1);
    assert.equal(hook.length, 1);

    assert.deepEqual(web[0]!.payload, { type: "messages", conversationId: conversation.id, seq: 1, count: 1 });
    assert.equal(web[0]!.topic, conversation.id.replace(/-/g, ""));
    assert.ok(Number(web[0]!.ttl) > 0);
    assert.deepEqual(fcm[0]!.data, { type: "messages", conversationId: conversation.id, seq: "1", count: "1" });
    assert.equal(fcm[0]!.collapseKey, conversation.id);
    assert.deepEqual(hook[0]!.notification, { type: "messages", conversationId: conversation.id, seq: 1, count: 1 });
    assert.equal(hook[0]!.collapseKey, conversation.id);
    for (const item of [web[0]!.payload, fcm[0]!.data, hook[0]!]) {
      assert.ok(!JSON.stringify(item).includes("secret plan"), "no message text without PUSH_INCLUDE_CONTENT");
    }
    // Never to the sender.
    assert.equal(services.webhook.for(alice.user.id).length, 0);
    assert.equal(pushLogs(cluster, "push sent", { userId: bob.user.id, conversationId: conversation.id }).length, 3);
    assertNothingRefused();

    const counter = async (line: string) => {
      let total = 0;
      for (const url of cluster.urls) {
        const text = await (await fetch(`${url}/metrics`)).text();
        total += Number(new RegExp(`^${line.replace(/[{}]/g, "\\$&")} (\\d+)`, "m").exec(text)?.[1] ?? 0);
      }
      return total;
    };
    assert.ok((await counter('chat_push_sent_total{provider="webpush"}')) >= 1);
    assert.ok((await counter('chat_push_sent_total{provider="fcm"}')) >= 1);
    assert.ok((await counter('chat_push_sent_total{provider="webhook"}')) >= 1);
    assert.ok((await counter('chat_push_skipped_total{reason="sender"}')) >= 1);
  });

  test("a member online on another pod, whose device acks message:delivered, gets none", async () => {
    const { u0, u1, alice, bob, conversation, received } = await pair();
    const device = await connectDevice(u1, bob.accessToken);
    devices.push(device);
    device.on("message:new", (m) => {
      void request(device, "message:delivered", { conversationId: m.conversationId, seq: m.seq });
    });

    await send(u0, alice.accessToken, conversation.id, "are you there?");
    await skipLogged(cluster, bob.user.id, conversation.id, "delivered");
    await settle(GRACE_MS);
    assert.deepEqual(received(), { web: [], fcm: [], hook: [] });
    device.close();
  });

  test("a member whose device comes online and acks before the grace period ends gets none", async () => {
    const { u0, u1, alice, bob, conversation, received } = await pair();
    const sentAt = Date.now();
    const seq = await send(u0, alice.accessToken, conversation.id, "catch this one");
    const device = await connectDevice(u1, bob.accessToken);
    devices.push(device);
    const ack = await request(device, "message:delivered", { conversationId: conversation.id, seq });
    assert.equal(ack.ok, true);
    assert.ok(Date.now() - sentAt < GRACE_MS, "the test could not ack within the grace period: premise not met");

    await skipLogged(cluster, bob.user.id, conversation.id, "delivered");
    await settle(GRACE_MS);
    assert.deepEqual(received(), { web: [], fcm: [], hook: [] });
    device.close();
  });

  test("a member who muted the conversation gets none", async () => {
    const { u0, u1, alice, bob, conversation, received } = await pair();
    const muted = await api(u1, "PATCH", `/v1/conversations/${conversation.id}`, {
      token: bob.accessToken,
      body: { muted: true },
    });
    assert.equal(muted.status, 200);
    await send(u0, alice.accessToken, conversation.id, "shh");
    await skipLogged(cluster, bob.user.id, conversation.id, "muted");
    await settle(GRACE_MS);
    assert.deepEqual(received(), { web: [], fcm: [], hook: [] });
  });

  test("a burst of 10 messages collapses into one notification per subscription", async () => {
    const { u0, alice, conversation, received } = await pair();
    const sender = await connectDevice(u0, alice.accessToken);
    devices.push(sender);
    const acks = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        request(sender, "message:send", {
          conversationId: conversation.id,
          clientMsgId: `burst-${i}`,
          content: `burst ${i}`,
        }),
      ),
    );
    assert.ok(acks.every((a) => a.ok));

    await eventually(() => received().web.length >= 1 && received().fcm.length >= 1, 30_000, "the burst's push");
    await settle(GRACE_MS);
    const { web, fcm, hook } = received();
    assert.equal(web.length, 1, "one Web Push for the burst");
    assert.equal(fcm.length, 1, "one FCM message for the burst");
    assert.equal(hook.length, 1, "one webhook call for the burst");
    assert.deepEqual(web[0]!.payload, { type: "messages", conversationId: conversation.id, seq: 10, count: 10 });
    sender.close();
  });

  test("subscriptions the push service reports gone are deleted; the others still get theirs", async () => {
    const { u0, u1, alice, bob, conversation, web, received } = await pair();
    const gone = services.webPush.subscribe("gone");
    const deadToken = `fcm-dead-${bob.user.id}`;
    services.fcm.unregistered.add(deadToken);
    const ids: string[] = [];
    for (const body of [
      { type: "webpush", endpoint: gone.endpoint, keys: gone.keys },
      { type: "fcm", token: deadToken },
    ]) {
      const res = await api<{ id: string }>(u1, "POST", "/v1/push/subscriptions", { token: bob.accessToken, body });
      assert.equal(res.status, 201);
      ids.push(res.body.id);
    }

    await send(u0, alice.accessToken, conversation.id, "hello");
    const db = new pg.Client({ connectionString: cluster.databaseUrl });
    await db.connect();
    try {
      const remaining = async () =>
        (
          await db.query<{ id: string; endpoint: string }>(
            "SELECT id::text, endpoint FROM push_subscriptions WHERE user_id = $1",
            [bob.user.id],
          )
        ).rows;
      await eventually(
        async () => (await remaining()).filter((r) => ids.includes(r.id)).length === 0,
        30_000,
        "gone subscriptions deleted",
      );
      await eventually(() => received().web.length === 1 && received().fcm.length === 1, 30_000, "healthy ones");
      const left = (await remaining()).map((r) => r.endpoint).sort();
      assert.deepEqual(left, [web.endpoint, `fcm-${bob.user.id}`].sort());
    } finally {
      await db.end();
    }
  });

  test("the push service down then up: retried with backoff, delivered once", async () => {
    const [u0, u1] = cluster.urls as [string, string];
    const alice = await registerUser(u0);
    const bob = await registerUser(u1);
    const conversation = await createConversation(u0, alice.accessToken, { type: "direct", userId: bob.user.id });
    await acceptConversation(u1, bob.accessToken, conversation.id);
    const flaky = services.flakyWebPush;
    const sub = flaky.subscribe();
    const res = await api(u1, "POST", "/v1/push/subscriptions", {
      token: bob.accessToken,
      body: { type: "webpush", endpoint: sub.endpoint, keys: sub.keys },
    });
    assert.equal(res.status, 201);

    await flaky.stop();
    await send(u0, alice.accessToken, conversation.id, "are you up?");
    await eventually(
      () =>
        pushLogs(cluster, "push failed: will retry", { userId: bob.user.id, conversationId: conversation.id }).length >=
        2,
      30_000,
      "failed attempts while the service is down",
    );
    assert.equal(flaky.for(sub.id).length, 0);
    await flaky.start();

    await eventually(() => flaky.for(sub.id).length >= 1, 30_000, "delivery once the service is back");
    await settle(GRACE_MS);
    assert.equal(flaky.for(sub.id).length, 1, "delivered exactly once");
    assert.deepEqual(flaky.for(sub.id)[0]!.payload, {
      type: "messages",
      conversationId: conversation.id,
      seq: 1,
      count: 1,
    });
    assert.deepEqual(flaky.refused, []);
  });
});
