// The gateway on a real Redis Cluster (three masters, a replica each): cross-pod delivery through sharded pub/sub
// spread over the shards, presence, rate limits counted across pods, and the push queue all run on it; then a master
// is killed under traffic, its replica takes over, the pods stay up, and every acked message still reaches every
// device once (live, or through sync after `sync:required`), with nothing stored twice.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { WebhookReceiver } from "../fixtures/push/webhook-receiver.js";
import {
  acceptConversation,
  api,
  collect,
  connectDevice,
  createConversation,
  type Device,
  eventually,
  metricValue,
  registerUser,
  request,
  waitForEvent,
} from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";
import { type LocalRedisCluster, startRedisCluster } from "../helpers/redis-cluster.js";
import { assertEveryAckedEverywhere, type Crowd, startCrowd, stream } from "../helpers/sdk-crowd.js";
import { send } from "../helpers/push.js";

const PREFIX = `rc${randomBytes(3).toString("hex")}`;
const GROUPS_PER_MIN = 3;
const PASSWORD = randomBytes(12).toString("hex");

describe("gateways on a Redis Cluster", { timeout: 110_000 }, () => {
  let redis: LocalRedisCluster;
  let webhook: WebhookReceiver;
  let cluster: Cluster;
  const sockets: Device[] = [];
  const crowds: Crowd[] = [];

  before(async () => {
    const started = Date.now();
    // With AUTH, as a managed cluster has: the password is given once (first seed) and applies to every node.
    [redis, webhook] = await Promise.all([
      startRedisCluster({ password: PASSWORD }),
      new WebhookReceiver(randomBytes(32).toString("hex")),
    ]);
    await webhook.start();
    console.log(`# cluster of 6 nodes ready in ${Date.now() - started} ms`);
    cluster = await startGateways(2, {
      adapter: "sharded",
      env: {
        REDIS_URL: "",
        REDIS_CLUSTER_NODES: [redis.urls[0], ...redis.seeds.slice(1, 3)].join(","),
        REDIS_PREFIX: PREFIX,
        RATE_LIMITS: "on",
        RATE_LIMIT_GROUPS_PER_MIN: String(GROUPS_PER_MIN),
        PUSH_WEBHOOK_URL: webhook.url,
        PUSH_WEBHOOK_SECRET: webhook.secret,
        PUSH_GRACE_MS: "300",
        PUSH_RETRY_BASE_MS: "200",
        PUSH_MAX_ATTEMPTS: "20",
      },
    });
  });
  after(async () => {
    for (const c of crowds) c.close();
    for (const s of sockets) s.close();
    await cluster?.cleanup();
    await webhook?.stop();
    await redis?.stop();
  });

  test("SDK devices on two pods get every message; room channels are spread over the masters", async () => {
    const crowd = await startCrowd(cluster.urls, 6);
    crowds.push(crowd);
    await stream(crowd, 5, 30, "calm");
    await assertEveryAckedEverywhere(crowd);
    const masters = await redis.masters();
    const channels = await Promise.all(
      masters.map(async (port) => (await redis.cli(port, "pubsub", "shardchannels", `${PREFIX}-gateway#*`)).trim()),
    );
    const used = channels.filter((c) => c.length > 0).length;
    assert.ok(used >= 2, `user room channels live on several shards (${used} of ${masters.length})`);
  });

  test("presence crosses pods", async () => {
    const [watcher, target] = await Promise.all([registerUser(cluster.urls[0]!), registerUser(cluster.urls[1]!)]);
    const direct = await createConversation(cluster.urls[0]!, watcher.accessToken, {
      type: "direct",
      userId: target.user.id,
    });
    // Accepted: until then the one who opened it sees no presence of the other (a message request).
    await acceptConversation(cluster.urls[1]!, target.accessToken, direct.id);
    const watching = await connectDevice(cluster.urls[0]!, watcher.accessToken);
    sockets.push(watching);
    const answer = await request(watching, "presence:subscribe", { userIds: [target.user.id] });
    assert.equal(answer.presence[target.user.id]?.online, false);
    const online = waitForEvent(watching, "presence", (e) => e.userId === target.user.id && e.online, 10_000);
    const targetSocket = await connectDevice(cluster.urls[1]!, target.accessToken);
    sockets.push(targetSocket);
    await online;
    const offline = waitForEvent(watching, "presence", (e) => e.userId === target.user.id && !e.online, 10_000);
    targetSocket.close();
    await offline;
  });

  test("rate limits are counted across pods", async () => {
    const user = await registerUser(cluster.urls[0]!);
    const statuses: number[] = [];
    for (let i = 0; i <= GROUPS_PER_MIN; i++) {
      const res = await api(cluster.urls[i % 2]!, "POST", "/v1/conversations", {
        token: user.accessToken,
        body: { type: "group", title: `g${i}`, memberIds: [] },
      });
      statuses.push(res.status);
    }
    assert.deepEqual(
      statuses,
      [...Array<number>(GROUPS_PER_MIN).fill(201), 429],
      "the last one, on either pod, refused",
    );
  });

  test("the push queue runs on the cluster", async () => {
    const [sender, offline] = await Promise.all([registerUser(cluster.urls[0]!), registerUser(cluster.urls[1]!)]);
    const { id } = await createConversation(cluster.urls[0]!, sender.accessToken, {
      type: "direct",
      userId: offline.user.id,
    });
    await send(cluster.urls[1]!, sender.accessToken, id, "are you there?");
    await eventually(() => webhook.for(offline.user.id).length === 1, 20_000, "one push for the offline member");
  });

  test("the emitter example reaches a user's devices on both pods through the cluster", async () => {
    const user = await registerUser(cluster.urls[0]!);
    const devices = await Promise.all(cluster.urls.map((url) => connectDevice(url, user.accessToken)));
    sockets.push(...devices);
    const payload = { kind: "export-ready", id: randomBytes(4).toString("hex") };
    const got = devices.map((d) =>
      waitForEvent(d as never, "notice" as never, ((p: { id?: string }) => p.id === payload.id) as never, 10_000),
    );
    const example = spawn(
      process.execPath,
      ["--import", "tsx", "examples/emit-from-another-service.ts", user.user.id, "notice", JSON.stringify(payload)],
      {
        env: { ...process.env, REDIS_URL: "", REDIS_CLUSTER_NODES: redis.urls[0]!, REDIS_PREFIX: PREFIX },
        stdio: "ignore",
      },
    );
    assert.equal(await new Promise((resolve) => example.once("exit", resolve)), 0, "the example ran");
    for (const p of await Promise.all(got)) assert.deepEqual(p, payload);
  });

  test("the push queue's master killed with a push pending: it is delivered once after the failover", async () => {
    const [sender, away] = await Promise.all([registerUser(cluster.urls[0]!), registerUser(cluster.urls[1]!)]);
    const { id } = await createConversation(cluster.urls[0]!, sender.accessToken, {
      type: "direct",
      userId: away.user.id,
    });
    await send(cluster.urls[0]!, sender.accessToken, id, "before the crash");
    // The push decision now waits out PUSH_GRACE_MS as a delayed job on the queue's master.
    const killedAt = Date.now();
    await redis.killMasterOf(`{${PREFIX}-push}:push:id`);
    await redis.waitHealthy(30_000);
    const failoverMs = Date.now() - killedAt;
    await eventually(() => webhook.for(away.user.id).length >= 1, 30_000, "the pending push delivered");
    console.log(`# push queue master killed: failover ${failoverMs} ms, push after ${Date.now() - killedAt} ms`);
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal(webhook.for(away.user.id).length, 1, "once");
  });

  test("a master killed under traffic: its replica takes over and every acked message arrives once", async () => {
    const crowd = await startCrowd(cluster.urls, 6);
    crowds.push(crowd);
    // Raw sockets (no SDK, no sync) count what arrived live, to measure what only sync recovered.
    const live = crowd.watchers.map((w) => collect(w.socket, "message:new"));
    const sending = stream(crowd, 16, 100, "failover");
    await eventually(() => crowd.devices.reduce((n, d) => n + d.acked.length, 0) >= 12, 20_000, "traffic flowing");

    // A user whose room's master still has a replica (the push queue's master was killed already).
    let victim = "";
    for (const u of crowd.users) {
      const channel = `${PREFIX}-gateway#/#user:${u.user.id}#`;
      if (await redis.hasReplica(await redis.masterOf(channel))) victim = channel;
    }
    assert.ok(victim, "a user room on a master with a replica");
    // What else the killed master served, for the report.
    const victimPort = await redis.masterOf(victim);
    const alsoOnIt = {
      rooms: (
        await Promise.all(crowd.users.map((u) => redis.masterOf(`${PREFIX}-gateway#/#user:${u.user.id}#`)))
      ).filter((p) => p === victimPort).length,
      presence: (await redis.masterOf(`{${PREFIX}:presence}:online`)) === victimPort,
      pushQueue: (await redis.masterOf(`{${PREFIX}-push}:push:id`)) === victimPort,
    };
    const killedAt = Date.now();
    const port = await redis.killMasterOf(victim);
    await redis.waitHealthy(30_000);
    const failoverMs = Date.now() - killedAt;
    await sending;
    await assertEveryAckedEverywhere(crowd, [], 40_000);

    const acked = crowd.devices.flatMap((d) => d.acked);
    const reasons = ["publish_failed", "sub_reconnect", "pub_reconnect"];
    const resyncs = await Promise.all(
      cluster.urls.map(async (url) => {
        const counts: Record<string, number> = {};
        for (const r of reasons) counts[r] = await metricValue(url, "chat_resyncs_total", `reason="${r}"`);
        return counts;
      }),
    );
    assert.ok(
      resyncs.some((counts) => counts.sub_reconnect! > 0 || counts.publish_failed! > 0),
      `the lost node was noticed and resynced: ${JSON.stringify(resyncs)}`,
    );
    const missedLive = live.map((events) => acked.filter((m) => !events.some((e) => e.id === m.id)).length);
    const syncRequired = crowd.watchers.map((w) => w.syncRequired);
    console.log(
      `# killed master :${port} (serving ${JSON.stringify(alsoOnIt)}); cluster_state:ok again after ${failoverMs} ms; ${acked.length} messages acked, ` +
        `missed live per pod ${JSON.stringify(missedLive)} (recovered by sync), sync:required per pod ` +
        `${JSON.stringify(syncRequired)}, resyncs per pod ${JSON.stringify(resyncs)}, sends refused ${crowd.devices.reduce((n, d) => n + d.failed.length, 0)}`,
    );
    assert.deepEqual(
      crowd.devices.flatMap((d) => d.failed),
      [],
      "no send refused",
    );
    assert.ok(
      cluster.gateways.every((g) => g.process.exitCode === null && g.process.signalCode === null),
      "both pods up",
    );

    // Nothing stored twice: one row per acked message, each text once.
    const db = new pg.Client({ connectionString: cluster.databaseUrl });
    await db.connect();
    try {
      const { rows } = await db.query<{ n: string; texts: string }>(
        "SELECT count(*) AS n, count(DISTINCT content) AS texts FROM messages WHERE conversation_id = $1",
        [crowd.conversationId],
      );
      assert.equal(Number(rows[0]!.n), acked.length, "one stored row per acked message");
      assert.equal(Number(rows[0]!.texts), acked.length, "no text stored twice");
    } finally {
      await db.end();
    }

    // Both pods ready again, and live delivery works on the new topology.
    for (const url of cluster.urls) {
      await eventually(async () => (await fetch(`${url}/readyz`)).status === 200, 15_000, `${url} ready again`);
    }
    await stream(crowd, 2, 20, "after");
    await assertEveryAckedEverywhere(crowd);
  });

  test("after the failover, presence and the push queue still work", async () => {
    const [sender, away] = await Promise.all([registerUser(cluster.urls[0]!), registerUser(cluster.urls[1]!)]);
    const { id } = await createConversation(cluster.urls[0]!, sender.accessToken, {
      type: "direct",
      userId: away.user.id,
    });
    await acceptConversation(cluster.urls[1]!, away.accessToken, id);
    await send(cluster.urls[1]!, sender.accessToken, id, "still there?");
    await eventually(() => webhook.for(away.user.id).length === 1, 20_000, "one push after the failover");
    const watching = await connectDevice(cluster.urls[0]!, sender.accessToken);
    sockets.push(watching);
    await request(watching, "presence:subscribe", { userIds: [away.user.id] });
    const online = waitForEvent(watching, "presence", (e) => e.userId === away.user.id && e.online, 10_000);
    sockets.push(await connectDevice(cluster.urls[1]!, away.accessToken));
    await online;
  });
});
