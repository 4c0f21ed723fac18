// Live fan-out through Redis loses what is published while Redis is away. Sockets that stay connected through the
// outage must still end up with every message: the gateway tells them to `sync` once Redis is back, and the SDK does.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ChatClient, type Message } from "@chat-gateway/sdk";
import {
  collect,
  connectDevice,
  createConversation,
  type Device,
  eventually,
  registerUser,
  request,
  waitForEvent,
} from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";
import { type PrivateRedis, startPrivateRedis } from "../helpers/private-redis.js";

describe("redis outage: connected sockets are resynced", () => {
  let redis: PrivateRedis;
  let cluster: Cluster;
  const closers: (() => unknown)[] = [];
  before(async () => {
    redis = await startPrivateRedis();
    cluster = await startGateways(2, { adapter: "sharded", env: { REDIS_URL: redis.url } });
  });
  after(async () => {
    for (const close of closers) await close();
    await cluster.cleanup();
    await redis.stop();
  });

  test("messages sent while Redis was down reach devices on other pods without any later message", async () => {
    const [u0, u1] = cluster.urls as [string, string];
    const [alice, bob] = await Promise.all([registerUser(u0), registerUser(u1)]);
    const { id: conversationId } = await createConversation(u0, alice.accessToken, {
      type: "direct",
      userId: bob.user.id,
    });
    const sender: Device = await connectDevice(u0, alice.accessToken);
    const raw: Device = await connectDevice(u1, bob.accessToken);
    const sdk = new ChatClient({ url: u1, auth: bob, transports: ["websocket"] });
    closers.push(
      () => sender.close(),
      () => raw.close(),
      () => sdk.close(),
    );
    const sdkReceived: Message[] = [];
    sdk.on("message", (m) => sdkReceived.push(m));
    await sdk.connect();
    const rawLive = collect(raw, "message:new");

    await redis.stop();
    const acks = [];
    for (let i = 1; i <= 3; i++) {
      acks.push(
        await request(sender, "message:send", {
          conversationId,
          clientMsgId: `during-outage-${i}`,
          content: `sent while redis was down ${i}`,
        }),
      );
    }
    assert.ok(
      acks.every((a) => a.ok),
      "sends are stored and acked without Redis",
    );
    const resync = waitForEvent(raw, "sync:required", () => true, 30_000);
    await redis.start();
    await resync;
    assert.equal(rawLive.length, 0, "live delivery across pods was lost during the outage (the premise)");

    const sync = await request(raw, "sync", { cursors: { [conversationId]: 0 } });
    assert.deepEqual(
      sync.messages.map((m) => m.clientMsgId),
      ["during-outage-1", "during-outage-2", "during-outage-3"],
    );
    await eventually(() => sdkReceived.length === 3, 15_000, "the SDK client to catch up");
    assert.deepEqual(
      sdkReceived.map((m) => m.seq),
      [1, 2, 3],
    );
  });
});
