// With the sharded adapter a pod subscribes to a user room's channel when the room's first socket joins, and the
// adapter does not wait for Redis to confirm: what other pods publish to the room before the confirmation never
// reaches that socket live. A subscription confirmed late (here: Redis paused while the device connects) is
// announced to the room's sockets on that pod as `sync:required`; one confirmed at once is not.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createClient } from "redis";
import { collect, connectDevice, type Device, eventually, registerUser, metricValue } from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";
import { type PrivateRedis, startPrivateRedis } from "../helpers/private-redis.js";

describe("a room subscription confirmed late", () => {
  let redis: PrivateRedis;
  let cluster: Cluster;
  const devices: Device[] = [];
  before(async () => {
    redis = await startPrivateRedis();
    cluster = await startGateways(1, { adapter: "sharded", env: { REDIS_URL: redis.url } });
  });
  after(async () => {
    for (const d of devices) d.close();
    await cluster.cleanup();
    await redis.stop();
  });

  test("tells that room's sockets to sync; one confirmed at once does not", async () => {
    const url = cluster.urls[0]!;
    const [quick, late] = await Promise.all([registerUser(url), registerUser(url)]);

    const quickDevice = await connectDevice(url, quick!.accessToken);
    devices.push(quickDevice);
    const quickResyncs = collect(quickDevice, "sync:required");

    const control = createClient({ url: redis.url });
    await control.connect();
    try {
      await control.sendCommand(["CLIENT", "PAUSE", "800", "ALL"]);
      // The handshake needs only the database; the join's SSUBSCRIBE waits for Redis to come back.
      const lateDevice = await connectDevice(url, late!.accessToken);
      devices.push(lateDevice);
      const lateResyncs = collect(lateDevice, "sync:required");
      await eventually(() => lateResyncs.length >= 1, 10_000, "sync:required to the late room's socket");
      assert.ok((await metricValue(url, "chat_resyncs_total", 'reason="subscribed_late"')) >= 1, "counted");
      assert.equal(quickResyncs.length, 0, "a room subscribed at once is not resynced");
      assert.equal(cluster.gateways[0]!.process.exitCode, null, "the gateway is up");
    } finally {
      control.destroy();
    }
  });
});
