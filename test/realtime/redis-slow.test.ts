// Redis made slow mid-traffic: CLIENT PAUSE 3000 ALL (every command held for 3 s) and DEBUG SLEEP 2 (Redis blocked
// for 2 s) while SDK devices on two gateways stream messages, with rate limits on so sends wait on Redis. The pods
// stay up; whatever needs Redis answers within REDIS_COMMAND_TIMEOUT_MS (`ok` from the in-memory limiter fallback,
// or `unavailable`), never hangs; /readyz reports Redis down during the pause and ready after; and every acked
// message reaches every device once.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createClient } from "redis";
import { eventually, request } from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";
import { type PrivateRedis, startPrivateRedis } from "../helpers/private-redis.js";
import { assertEveryAckedEverywhere, type Crowd, startCrowd, stream } from "../helpers/sdk-crowd.js";

const COMMAND_TIMEOUT_MS = 1_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Fires a command on a connection of its own (the pausing or sleeping one is held too) and does not wait. */
async function fire(url: string, args: string[]): Promise<() => Promise<void>> {
  const client = createClient({ url });
  await client.connect();
  const done = client.sendCommand(args);
  return async () => {
    await done;
    client.destroy();
  };
}

async function readiness(url: string): Promise<{ status: number; redis: boolean | undefined }> {
  const res = await fetch(`${url}/readyz`);
  const body = (await res.json()) as { checks: Record<string, boolean> };
  return { status: res.status, redis: body.checks.redis };
}

describe("redis paused and slept mid-traffic", () => {
  let redis: PrivateRedis;
  let cluster: Cluster;
  let crowd: Crowd | undefined;
  before(async () => {
    redis = await startPrivateRedis({ args: ["--enable-debug-command", "local"] });
    cluster = await startGateways(2, {
      adapter: "sharded",
      env: {
        REDIS_URL: redis.url,
        REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS),
        RATE_LIMITS: "on",
        RATE_LIMIT_SEND_PER_SEC: "1000",
        RATE_LIMIT_EVENTS_PER_SEC: "1000",
        RATE_LIMIT_HTTP_PER_MIN: "100000",
        RATE_LIMIT_LOGIN_PER_MIN: "1000",
      },
    });
  });
  after(async () => {
    crowd?.close();
    await cluster.cleanup();
    await redis.stop();
  });

  test("pods stay up, answer in time, recover, and lose nothing acked", async (t) => {
    crowd = await startCrowd(cluster.urls, 6);
    const c = crowd;
    const [w0, w1] = c.watchers as [Crowd["watchers"][0], Crowd["watchers"][0]];
    const acked = () => c.devices.reduce((n, d) => n + d.acked.length, 0);
    const sending = stream(c, 25, 150, "slow");
    await eventually(() => acked() >= 15, 20_000, "some sends acked");

    // Requests that need Redis while it is paused: each answers ok or unavailable, within the command timeout.
    const timed = async (run: () => Promise<{ ok: boolean; error?: { code: string } }>) => {
      const started = Date.now();
      const answer = await run();
      return { ms: Date.now() - started, outcome: answer.ok ? "ok" : answer.error!.code };
    };
    const probe = () =>
      Promise.all([
        timed(() =>
          request(w0.socket, "message:send", {
            conversationId: c.conversationId,
            clientMsgId: `probe-${Date.now()}-0`,
            content: "sent while redis is slow",
          }),
        ),
        timed(() =>
          request(w1.socket, "message:send", {
            conversationId: c.conversationId,
            clientMsgId: `probe-${Date.now()}-1`,
            content: "sent while redis is slow",
          }),
        ),
        timed(() => request(w1.socket, "presence:subscribe", { userIds: [c.users[0]!.user.id] })),
      ]);

    const unpause = await fire(redis.url, ["CLIENT", "PAUSE", "3000", "ALL"]);
    await sleep(300);
    const duringPause = await probe();
    const readyDuringPause = await Promise.all(cluster.urls.map(readiness));
    await unpause();
    await eventually(
      async () => (await Promise.all(cluster.urls.map(readiness))).every((r) => r.status === 200),
      15_000,
      "both pods ready again after the pause",
    );

    const wake = await fire(redis.url, ["DEBUG", "SLEEP", "2"]);
    await sleep(200);
    const duringSleep = await probe();
    await wake();

    await sending;
    t.diagnostic(`during the pause (send, send, presence): ${JSON.stringify(duringPause)}`);
    t.diagnostic(`during the sleep (send, send, presence): ${JSON.stringify(duringSleep)}`);
    for (const { ms, outcome } of [...duringPause, ...duringSleep]) {
      assert.ok(["ok", "unavailable"].includes(outcome), `answered ${outcome}`);
      assert.ok(ms < COMMAND_TIMEOUT_MS + 1_500, `answered in ${ms} ms, not held for the whole pause`);
    }
    for (const r of readyDuringPause) {
      assert.equal(r.status, 503, "not ready while Redis is paused");
      assert.equal(r.redis, false, "and it is Redis that is down");
    }
    assert.deepEqual(
      c.devices.flatMap((d) => d.failed).filter((code) => code !== "unavailable"),
      [],
      "no send refused for another reason",
    );
    // The probes' messages are members of the conversation too: every device must end with them as well.
    await assertEveryAckedEverywhere(c);
    assert.ok(
      cluster.gateways.every((g) => g.process.exitCode === null),
      "no gateway exited",
    );
    const timeouts = await Promise.all(
      cluster.urls.map(async (url) => {
        const text = await (await fetch(`${url}/metrics`)).text();
        const line = text.split("\n").find((l) => l.includes('op="rate_limit_timeout"'));
        return Number(line?.split(" ").at(-1) ?? 0);
      }),
    );
    assert.ok(
      timeouts.every((n) => n >= 1),
      "each pod counted its rate-limit checks that Redis did not answer in time",
    );
    for (const g of cluster.gateways) {
      assert.ok(!g.logs.some((l) => l.includes("uncaught error")), "nothing reached the last-resort handler");
    }
  });
});
