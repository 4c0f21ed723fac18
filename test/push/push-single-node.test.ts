// Push on one node without Redis: embedded PGlite, the in-process queue, VAPID keys generated into DATA_DIR.
// Same rules as with BullMQ; and since pending jobs live in memory, a graceful drain sends them instead of
// dropping them.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  acceptConversation,
  api,
  connectDevice,
  createConversation,
  eventually,
  registerUser,
  request,
} from "../helpers/clients.js";
import type { Cluster, GatewayProcess } from "../helpers/gateways.js";
import { type PushGateways, type PushServices, send, settle, skipLogged, startPushGateways } from "../helpers/push.js";

const GRACE_MS = 1000;

describe("push notifications (single node, in-process queue)", () => {
  let push: PushGateways;
  let services: PushServices;
  let cluster: Cluster;
  let gateway: GatewayProcess;

  before(async () => {
    push = await startPushGateways({ graceMs: GRACE_MS });
    ({ services, cluster, gateway } = push);
  });
  after(() => push?.stop());

  async function pair() {
    const alice = await registerUser(gateway.url);
    const bob = await registerUser(gateway.url);
    const conversation = await createConversation(gateway.url, alice.accessToken, {
      type: "direct",
      userId: bob.user.id,
    });
    await acceptConversation(gateway.url, bob.accessToken, conversation.id);
    const web = await push.subscribeWebPush(bob, gateway.url);
    return { alice, bob, conversation, web };
  }

  test("an offline member gets one push per burst, signed with the generated VAPID key", async () => {
    const { alice, conversation, web } = await pair();
    for (let i = 0; i < 5; i++) await send(gateway.url, alice.accessToken, conversation.id, `m${i}`);
    await eventually(() => services.webPush.for(web.id).length >= 1, 20_000, "the push");
    await settle(GRACE_MS);
    assert.equal(services.webPush.for(web.id).length, 1);
    assert.deepEqual(services.webPush.for(web.id)[0]!.payload, {
      type: "messages",
      conversationId: conversation.id,
      seq: 5,
      count: 5,
    });
    assert.deepEqual(services.webPush.refused, []);
  });

  test("a member online and acking gets none", async () => {
    const { alice, bob, conversation, web } = await pair();
    const device = await connectDevice(gateway.url, bob.accessToken);
    device.on("message:new", (m) => {
      void request(device, "message:delivered", { conversationId: m.conversationId, seq: m.seq });
    });
    await send(gateway.url, alice.accessToken, conversation.id, "hi");
    await skipLogged(cluster, bob.user.id, conversation.id, "delivered");
    await settle(GRACE_MS);
    assert.equal(services.webPush.for(web.id).length, 0);
    device.close();
  });

  test("the push service down then up: retried in process, delivered once", async () => {
    const { alice, bob, conversation } = await pair();
    const flaky = services.flakyWebPush;
    const sub = flaky.subscribe();
    const res = await api(gateway.url, "POST", "/v1/push/subscriptions", {
      token: bob.accessToken,
      body: { type: "webpush", endpoint: sub.endpoint, keys: sub.keys },
    });
    assert.equal(res.status, 201);
    await flaky.stop();
    await send(gateway.url, alice.accessToken, conversation.id, "ping");
    await eventually(
      () =>
        gateway.logs.filter((l) => l.includes("push failed: will retry") && l.includes(conversation.id)).length >= 2,
      20_000,
      "failed attempts",
    );
    await flaky.start();
    await eventually(() => flaky.for(sub.id).length >= 1, 20_000, "delivery after recovery");
    await settle(GRACE_MS);
    assert.equal(flaky.for(sub.id).length, 1);
  });

  test("the VAPID key survives a restart, and a graceful drain sends pending pushes instead of dropping them", async () => {
    assert.equal(await gateway.stop("SIGTERM"), 0);
    // A grace period far longer than the test: only the drain can send this push in time.
    gateway = await cluster.startAnother({ PUSH_GRACE_MS: "600000" });
    const key = await api<{ publicKey: string }>(gateway.url, "GET", "/v1/push/vapid-public-key", {
      token: (await registerUser(gateway.url)).accessToken,
    });
    assert.equal(key.body.publicKey, push.vapidPublicKey());

    const { alice, conversation, web } = await pair();
    await send(gateway.url, alice.accessToken, conversation.id, "before shutdown");
    assert.equal(await gateway.stop("SIGTERM"), 0);
    assert.equal(services.webPush.for(web.id).length, 1);
  });

  test("with PUSH_INCLUDE_CONTENT=on the payload carries the sender, the title and the text", async () => {
    gateway = await cluster.startAnother({ PUSH_INCLUDE_CONTENT: "on" });
    const { alice, conversation, web } = await pair();
    await send(gateway.url, alice.accessToken, conversation.id, "x".repeat(1200));
    await eventually(() => services.webPush.for(web.id).length >= 1, 20_000, "the push");
    assert.deepEqual(services.webPush.for(web.id)[0]!.payload, {
      type: "messages",
      conversationId: conversation.id,
      seq: 1,
      count: 1,
      sender: { id: alice.user.id, displayName: alice.user.displayName },
      title: null,
      body: "x".repeat(1000),
    });
  });
});
