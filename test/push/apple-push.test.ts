// Push to Apple devices, both ways: through FCM (an `apns` block APNs accepts: an alert with mutable-content at
// priority 10, not a data-only push) and directly to APNs over HTTP/2 with token auth (ES256 provider token, topic,
// push type, collapse id; 410 deletes the device). One gateway, the in-process queue.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { acceptConversation, api, createConversation, eventually, registerUser } from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";
import { FakeApns } from "../fixtures/push/fake-apns.js";
import { FakeFcm } from "../fixtures/push/fake-fcm.js";
import { send } from "../helpers/push.js";

describe("push to Apple devices (FCM's apns block and direct APNs)", () => {
  const fcm = new FakeFcm();
  const apns = new FakeApns();
  let cluster: Cluster;

  before(async () => {
    await Promise.all([fcm.start(), apns.start()]);
    cluster = await startGateways(1, {
      adapter: "memory",
      env: {
        FCM_SERVICE_ACCOUNT: fcm.serviceAccountJson(),
        FCM_ENDPOINT: fcm.url,
        ...apns.env(),
        PUSH_GRACE_MS: "300",
        PUSH_RETRY_BASE_MS: "100",
      },
    });
  });
  after(async () => {
    if (process.env.DEBUG_LOGS)
      console.log(cluster?.gateways[0]?.logs.filter((l) => /push|apns|fcm/i.test(l)).join("\n"));
    await cluster?.cleanup();
    await Promise.all([fcm.stop(), apns.stop()]);
  });

  async function offlineRecipient() {
    const url = cluster.urls[0]!;
    const alice = await registerUser(url);
    const bob = await registerUser(url);
    const conversation = await createConversation(url, alice.accessToken, { type: "direct", userId: bob.user.id });
    // Accepted: a pending message request is pushed as such (test/push/consent-push.test.ts), not as a message.
    await acceptConversation(url, bob.accessToken, conversation.id);
    const fcmToken = `fcm-${bob.user.id}`;
    const deviceToken = randomBytes(32).toString("hex");
    for (const body of [
      { type: "fcm", token: fcmToken },
      { type: "apns", token: deviceToken.toUpperCase() },
    ]) {
      const res = await api(url, "POST", "/v1/push/subscriptions", { token: bob.accessToken, body });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
    return { url, alice, bob, conversation, fcmToken, deviceToken };
  }

  test("an offline iPhone gets an alert both through FCM and from APNs directly", async () => {
    const { url, alice, conversation, fcmToken, deviceToken } = await offlineRecipient();
    await send(url, alice.accessToken, conversation.id, "hello iPhone");
    await eventually(() => fcm.for(fcmToken).length === 1 && apns.received.some((r) => r.deviceToken === deviceToken));

    const viaFcm = fcm.for(fcmToken)[0]!;
    assert.equal(viaFcm.apns?.headers?.["apns-push-type"], "alert");
    assert.equal(viaFcm.apns?.headers?.["apns-priority"], "10");
    assert.equal(viaFcm.apns?.headers?.["apns-collapse-id"], conversation.id);
    assert.equal(viaFcm.apns?.payload?.aps?.["mutable-content"], 1);
    assert.deepEqual(viaFcm.apns?.payload?.aps?.alert, { title: "New message", body: "New message" });
    assert.equal(viaFcm.data.conversationId, conversation.id, "Android still gets the data message");

    const direct = apns.received.find((r) => r.deviceToken === deviceToken)!;
    assert.equal(direct.headers["apns-collapse-id"], conversation.id);
    assert.equal(direct.headers["apns-push-type"], "alert");
    assert.equal(direct.payload.aps["thread-id"], conversation.id);
    assert.equal(direct.payload.conversationId, conversation.id, "the app gets the notification's fields too");
    assert.equal(direct.payload.count, 1);
    assert.ok(!JSON.stringify(direct.payload).includes("hello iPhone"), "no content without PUSH_INCLUDE_CONTENT");
    assert.deepEqual(apns.refused, [], "APNs accepted every provider token and push type");
  });

  test("a device token APNs calls Unregistered (410) is deleted", async () => {
    const { url, alice, conversation, deviceToken } = await offlineRecipient();
    apns.unregistered.add(deviceToken);
    await send(url, alice.accessToken, conversation.id, "to an uninstalled app");
    const db = new pg.Client({ connectionString: cluster.databaseUrl });
    await db.connect();
    try {
      await eventually(async () => {
        const rows = await db.query("SELECT 1 FROM push_subscriptions WHERE type = 'apns' AND endpoint = $1", [
          deviceToken,
        ]);
        return rows.rowCount === 0;
      });
    } finally {
      await db.end();
    }
  });

  test("a malformed APNs device token is bad_request", async () => {
    const url = cluster.urls[0]!;
    const bob = await registerUser(url);
    const res = await api<{ error: { code: string } }>(url, "POST", "/v1/push/subscriptions", {
      token: bob.accessToken,
      body: { type: "apns", token: "not-hex" },
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, "bad_request");
  });
});
