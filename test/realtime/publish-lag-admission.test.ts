// A pod that commits faster than it can fan out refuses sends instead of queueing them behind Redis: with the
// adapter's publishes held (CLIENT PAUSE WRITE on a private Redis, which holds PUBLISH and SPUBLISH), a send admitted
// before the pause is acked and still reaches the other pod's device once Redis answers; a send arriving while its
// publish has waited past WRITER_MAX_PUBLISH_LAG_MS is refused `unavailable` with `retryAfterMs`, counted as
// `publish_lag`, and written when retried after the pause.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createClient } from "redis";
import type { AuthResult, Message } from "@chat-gateway/protocol";
import {
  collect,
  connectDevice,
  createConversation,
  type Device,
  eventually,
  metricValue,
  registerUser,
  request,
} from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";
import { type PrivateRedis, startPrivateRedis } from "../helpers/private-redis.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("fan-out behind Redis", () => {
  let redis: PrivateRedis;
  let cluster: Cluster;
  const devices: Device[] = [];
  before(async () => {
    redis = await startPrivateRedis();
    cluster = await startGateways(2, {
      adapter: "sharded",
      env: { REDIS_URL: redis.url, WRITER_MAX_PUBLISH_LAG_MS: "100" },
    });
  });
  after(async () => {
    for (const d of devices) d.close();
    await cluster.cleanup();
    await redis.stop();
  });

  test("sends are refused while publishes wait for Redis; what was acked still arrives", async () => {
    const [a, b] = cluster.urls as [string, string];
    const alice: AuthResult = await registerUser(a);
    const bob: AuthResult = await registerUser(a);
    const direct = await createConversation(a, alice.accessToken, { type: "direct", userId: bob.user.id });
    const aliceDevice = await connectDevice(a, alice.accessToken);
    const bobDevice = await connectDevice(b, bob.accessToken);
    devices.push(aliceDevice, bobDevice);
    const arrived = collect(bobDevice, "message:new");
    const send = (clientMsgId: string) =>
      request(aliceDevice, "message:send", { conversationId: direct.id, clientMsgId, content: clientMsgId });
    assert.equal((await send("before")).ok, true);
    await eventually(() => arrived.length === 1, 10_000, "the first message on the other pod");

    const pauser = createClient({ url: redis.url });
    await pauser.connect();
    try {
      await pauser.sendCommand(["CLIENT", "PAUSE", "1500", "WRITE"]);
      const during = await send("during");
      assert.equal(during.ok, true, "admitted: no publish was waiting yet");
      await sleep(300); // its fan-out's publish has now waited past the 100 ms limit
      const started = Date.now();
      const refused = await send("refused");
      assert.equal(refused.ok, false, "refused while the publish waits");
      assert.equal(refused.error.code, "unavailable");
      assert.ok(
        Number((refused.error.details as { retryAfterMs?: number } | undefined)?.retryAfterMs) > 0,
        "with a time to retry after",
      );
      assert.ok(Date.now() - started < 500, "answered at once, not after the pause");
      assert.ok((await metricValue(a, "chat_message_writer_refused_total", 'reason="publish_lag"')) >= 1);
    } finally {
      await pauser.sendCommand(["CLIENT", "UNPAUSE"]).catch(() => undefined);
      pauser.destroy();
    }

    // The client retries with the same clientMsgId until it is written.
    await eventually(async () => (await send("refused")).ok, 10_000, "the refused send written on retry");
    await eventually(() => arrived.length === 3, 10_000, "every acked message on the other pod");
    assert.deepEqual(
      (arrived as Message[]).map((m) => m.clientMsgId),
      ["before", "during", "refused"],
    );
  });
});
