// Redis closes a pod's subscriber connection (CLIENT KILL TYPE pubsub, or the subscriber exceeding
// client-output-buffer-limit pubsub during a burst): whatever was published meanwhile never reaches that pod's
// sockets live. The pod resubscribes and tells its sockets `sync:required`, and the SDK catches up, so every acked
// message still ends on every device, once.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createClient } from "redis";
import { eventually, metricValue } from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";
import { type PrivateRedis, startPrivateRedis } from "../helpers/private-redis.js";
import { assertEveryAckedEverywhere, type Crowd, startCrowd, stream } from "../helpers/sdk-crowd.js";

async function redisCommand(url: string, args: string[]): Promise<unknown> {
  const client = createClient({ url });
  await client.connect();
  try {
    return await client.sendCommand(args);
  } finally {
    client.destroy();
  }
}

describe("redis closes a subscriber: the pod's sockets are resynced", () => {
  let redis: PrivateRedis;
  let cluster: Cluster;
  let crowd: Crowd | undefined;
  before(async () => {
    redis = await startPrivateRedis();
    cluster = await startGateways(2, { adapter: "sharded", env: { REDIS_URL: redis.url } });
  });
  after(async () => {
    crowd?.close();
    await cluster.cleanup();
    await redis.stop();
  });

  test("CLIENT KILL TYPE pubsub mid-stream, then an output-buffer-limit kill during a burst", async () => {
    crowd = await startCrowd(cluster.urls, 6);
    const c = crowd;

    // 1. Both pods' subscribers killed while messages flow.
    const sending = stream(c, 12, 60, "kill");
    await eventually(() => c.devices.reduce((n, d) => n + d.acked.length, 0) >= 20, 20_000, "some sends acked");
    const killed = await redisCommand(redis.url, ["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert.ok(Number(killed) >= 2, "both pods' subscribers were killed");
    await sending;
    await eventually(() => c.watchers.every((w) => w.syncRequired >= 1), 10_000, "sync:required on both pods");
    await assertEveryAckedEverywhere(c);
    for (const url of cluster.urls) {
      assert.ok((await metricValue(url, "chat_resyncs_total", 'reason="sub_reconnect"')) >= 1, "counted as a resync");
    }

    // 2. A subscriber that cannot keep up is closed by Redis over client-output-buffer-limit pubsub.
    await redisCommand(redis.url, ["CONFIG", "SET", "client-output-buffer-limit", "pubsub 1kb 1kb 0"]);
    const before = c.watchers.map((w) => w.syncRequired);
    const reconnectsBefore = await Promise.all(
      cluster.urls.map((u) => metricValue(u, "chat_redis_reconnects_total", 'client="sub"')),
    );
    const long = "x".repeat(3_900);
    await Promise.all(c.devices.map((d) => Promise.all([1, 2, 3, 4].map(() => d.client.send(c.conversationId, long)))));
    await eventually(
      () => c.devices.reduce((n, d) => n + d.acked.length + d.failed.length, 0) >= c.devices.length * 16,
      30_000,
      "the burst acked",
    );
    await redisCommand(redis.url, ["CONFIG", "SET", "client-output-buffer-limit", "pubsub 32mb 8mb 60"]);
    const reconnectsAfter = await Promise.all(
      cluster.urls.map((u) => metricValue(u, "chat_redis_reconnects_total", 'client="sub"')),
    );
    const closedPods = cluster.urls.map((_, i) => reconnectsAfter[i]! > reconnectsBefore[i]!);
    assert.ok(closedPods.some(Boolean), "Redis closed at least one subscriber over the output buffer limit");
    await eventually(
      () => c.watchers.every((w, i) => !closedPods[i] || w.syncRequired > before[i]!),
      10_000,
      "sync:required on every pod whose subscriber was closed",
    );
    await assertEveryAckedEverywhere(c);
    assert.deepEqual(
      c.devices.flatMap((d) => d.failed),
      [],
      "no send refused",
    );
    assert.ok(
      cluster.gateways.every((g) => g.process.exitCode === null),
      "no gateway exited",
    );
  });
});
