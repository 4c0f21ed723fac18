// The one-pod delivery under load, reproduced: node-redis fails a command that waited longer than its timeout to be
// written (socket backpressure: Redis not reading fast enough) with a TimeoutError while the connection stays up.
// Here Redis is blocked (DEBUG SLEEP) during a burst of large messages to a group spread over two pods, so the
// publisher's socket fills and the queued publishes time out. Before the fix, the classic adapter let that
// rejection escape (both pods died on it) and the sharded adapter swallowed it (the message reached the sender's pod
// only). Now each failed publish is counted and the sockets of its rooms on every pod are told `sync:required`:
// the pods stay up and every acked message reaches every device once.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { createClient } from "redis";
import { request, metricValue } from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";
import { type PrivateRedis, startPrivateRedis } from "../helpers/private-redis.js";
import { assertEveryAckedEverywhere, type Crowd, startCrowd } from "../helpers/sdk-crowd.js";

const BURST = 300;

for (const adapter of ["sharded", "classic"] as const) {
  describe(`${adapter} adapter: publishes timed out behind a blocked Redis`, () => {
    let redis: PrivateRedis | undefined;
    let cluster: Cluster | undefined;
    let crowd: Crowd | undefined;
    after(async () => {
      crowd?.close();
      await cluster?.cleanup();
      await redis?.stop();
    });

    test("are resynced, not lost, and crash nothing", async (t) => {
      redis = await startPrivateRedis({ args: ["--enable-debug-command", "local"] });
      cluster = await startGateways(2, {
        adapter,
        env: {
          REDIS_URL: redis.url,
          REDIS_COMMAND_TIMEOUT_MS: "300",
          MESSAGE_MAX_CHARS: "40000",
          // The burst is the point here, not admission control: let the writer queue it all.
          WRITER_MAX_WAIT_MS: "10000",
          // Devices here read everything; the burst must not trip the slow-consumer guard instead.
          SOCKET_MAX_BUFFERED_BYTES: String(64 * 1024 * 1024),
        },
      });
      crowd = await startCrowd(cluster.urls, 10);
      const c = crowd;

      const control = createClient({ url: redis.url });
      await control.connect();
      const sleeping = control.sendCommand(["DEBUG", "SLEEP", "3"]);
      // Sends do not wait on Redis (rate limits are off here): they are stored and acked while it sleeps.
      await new Promise((r) => setTimeout(r, 100));
      // The classic adapter publishes a group's message once for all its rooms (the sharded one once per room here):
      // ten times the bytes per message give both the same backlog behind the sleeping Redis.
      const long = "y".repeat(adapter === "classic" ? 39_000 : 3_900);
      const acks = await Promise.all(
        Array.from({ length: BURST }, (_, i) =>
          request(c.watchers[i % 2]!.socket, "message:send", {
            conversationId: c.conversationId,
            clientMsgId: `burst-${i}`,
            content: `${i} ${long}`,
          }),
        ),
      );
      await sleeping;
      control.destroy();
      assert.ok(
        acks.every((a) => a.ok),
        "every send of the burst acked",
      );

      const failed = await Promise.all(
        cluster.urls.map((u) => metricValue(u, "chat_redis_command_failures_total", 'client="pub",op="publish"')),
      );
      t.diagnostic(`publishes failed per pod: ${failed.join(", ")}`);
      assert.ok(
        failed.some((n) => n > 0),
        "the premise: publishes timed out in node-redis while connected",
      );
      await assertEveryAckedEverywhere(
        c,
        acks.map((a) => a.message),
      );
      const resynced = await Promise.all(
        cluster.urls.map((u) => metricValue(u, "chat_resyncs_total", 'reason="publish_failed"')),
      );
      assert.ok(
        cluster.urls.every((_, i) => failed[i] === 0 || resynced[i]! >= 1),
        "a pod whose publish failed resynced",
      );
      assert.ok(
        cluster.gateways.every((g) => g.process.exitCode === null),
        "no gateway exited",
      );
      for (const g of cluster.gateways) {
        assert.ok(!g.logs.some((l) => l.includes("uncaught error")), "handled where it happened, not by the net");
      }
    });
  });
}
