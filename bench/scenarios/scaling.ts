// How the cost grows with the pods, and what losing one costs. Both scenarios bring their own private Redis (a
// redis-server on a free port, nothing else on it, so its counters are exactly this run's) and their own gateways.
//
// scaling: pods 2 -> 4 -> 6 (--pods), classic against sharded (--adapters), 1:1 traffic between users whose two
//   devices sit on two different pods. Per configuration: the adapter pub/sub messages each pod received (the pods'
//   own chat_adapter_messages_received_total, an exact count), Redis's PUBLISH/SPUBLISH calls (INFO commandstats),
//   Redis CPU (INFO cpu) and the pods' CPU (/proc), each divided by the messages delivered to devices.
// storm: --storm-pods pods (4) holding --storm-users users with 2 devices each; one pod is SIGKILLed under 1:1
//   traffic, its devices reconnect (after the SDK's first reconnection delay, 0.5-1.5 s) to the pods still up and
//   sync. Figures: time until every one of them has reconnected and synced, the Redis commands that cost, and the
//   loss verdict (every acked message reached every device, history gapless).
import { performance } from "node:perf_hooks";
import { createClient } from "redis";
import { acceptConversation, createConversation, registerUser } from "../../test/helpers/clients.js";
import { startPrivateRedis } from "../../test/helpers/private-redis.js";
import { type BenchCluster, type BenchGateway, processUsage, type Runtime, startBenchCluster } from "../cluster.js";
import type { Message } from "@chat-gateway/protocol";
import { type Arrival, connectDevices, type SdkDevice } from "../devices.js";
import { inBatches, verifyHistory } from "../load.js";
import { fixed, markdownTable, percentile, sleep } from "../stats.js";
import { openLoop, Phase } from "../traffic.js";
import { cpuSeconds, quiesce } from "./common.js";

export interface ScalingFlags {
  pods: number[];
  adapters: ("classic" | "sharded")[];
  users: number;
  rate: number;
  seconds: number;
  stormPods: number;
  stormUsers: number;
  stormRate: number;
  stormAdapter: "classic" | "sharded";
}

export interface ScalingReport {
  tables: string[];
  lost: string[];
}

interface User {
  userId: string;
  token: string;
}

/** INFO commandstats as command -> calls, and Redis's own CPU seconds (user + sys, main thread and children). */
async function redisCounters(redis: { info(section: string): Promise<string> }) {
  const calls: Record<string, number> = {};
  for (const line of (await redis.info("commandstats")).split("\n")) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (m) calls[m[1]!] = Number(m[2]);
  }
  const cpu = await redis.info("cpu");
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(cpu)?.[1] ?? 0);
  return { calls, cpuSeconds: field("used_cpu_sys") + field("used_cpu_user") };
}

function callDeltas(after: Record<string, number>, before: Record<string, number>) {
  const out: Record<string, number> = {};
  for (const [cmd, n] of Object.entries(after)) if (n - (before[cmd] ?? 0) > 0) out[cmd] = n - (before[cmd] ?? 0);
  return out;
}

/** One pod's chat_adapter_messages_received_total, by channel kind. */
async function received(g: BenchGateway): Promise<Record<string, number>> {
  const text = await (await fetch(`${g.url}/metrics`)).text();
  const out: Record<string, number> = { room: 0, shared: 0, other: 0 };
  for (const line of text.split("\n")) {
    const m = /^chat_adapter_messages_received_total\{channel="(\w+)"\} ([\d.e+]+)/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

/** A database, a private Redis, one gateway to register the users on and create their 1:1 conversations. */
async function setUp(runtime: Runtime, users: number) {
  const redis = await startPrivateRedis();
  const info = createClient({ url: redis.url });
  await info.connect();
  // The gateways' first one migrates and registers; it is stopped before any measured configuration starts.
  const cluster = await startBenchCluster(1, "sharded", runtime, {
    REDIS_URL: redis.url,
    ACCESS_TOKEN_TTL: "7200",
  });
  const base = cluster.gateways[0]!;
  const started = Date.now();
  const population: User[] = await inBatches(Array.from({ length: users }), 8, async () => {
    const r = await registerUser(base.url);
    return { userId: r.user.id, token: r.accessToken };
  });
  const pairs = Array.from({ length: Math.floor(users / 2) }, (_, k) => [population[2 * k]!, population[2 * k + 1]!]);
  const conversations = await inBatches(pairs, 8, async ([a, b]) => {
    const c = await createConversation(base.url, a!.token, { type: "direct", userId: b!.userId });
    // Accepted, as an ongoing conversation is: a message request would limit what its starter may send.
    await acceptConversation(base.url, b!.token, c.id);
    return { id: c.id, owner: a! };
  });
  console.log(`registered ${users} users, ${pairs.length} direct conversations, in ${(Date.now() - started) / 1000} s`);
  await new Promise<void>((resolve) => {
    base.process.once("exit", () => resolve());
    base.process.kill("SIGKILL");
  });
  const cleanup = async () => {
    await info.quit().catch(() => undefined);
    await cluster.cleanup();
    await redis.stop();
  };
  return { cluster, info, population, conversations, cleanup };
}

/** Starts `count` pods with this adapter (MIGRATE_ON_START off: the base gateway migrated). */
async function startPods(cluster: BenchCluster, count: number, adapter: string) {
  return Promise.all(
    Array.from({ length: count }, () =>
      cluster.startExtra({ env: { REDIS_ADAPTER: adapter, MIGRATE_ON_START: "off" } }),
    ),
  );
}

/**
 * User i's devices go to pods i % P and (i + 1) % P: every user on two pods, a 1:1 conversation (users 2k, 2k+1) on
 * three, and every pod holds the same number of devices. Devices come back as user 0 device 0, user 0 device 1, ...
 */
async function connectPopulation(
  pods: BenchGateway[],
  population: User[],
  markers: boolean,
  phase: () => Phase | undefined,
) {
  const options = population.flatMap((u, i) =>
    [0, 1].map((k) => ({
      url: pods[(i + k) % pods.length]!.url,
      auth: { token: u.token },
      userId: u.userId,
      token: u.token,
      onMessage: (device: SdkDevice, message: Message, how: Arrival, at: number) =>
        phase()?.arrive(device, message, how, at),
      onLateLive: (device: SdkDevice, message: Message) => phase()?.lateLive(device, message),
      // Off for the fan-out count, so every publish is a message:new (markers would add their own fan-out).
      ...(markers ? {} : { markerDelayMs: 24 * 3600_000 }),
    })),
  );
  return connectDevices(options, 50, 10);
}

function wire(devices: SdkDevice[], conversations: { id: string }[]) {
  const byConversation = new Map<string, SdkDevice[]>();
  conversations.forEach((c, k) => {
    const four = devices.slice(4 * k, 4 * k + 4);
    for (const d of four) d.follow(c.id);
    byConversation.set(c.id, four);
  });
  return (id: string) => byConversation.get(id) ?? [];
}

/** The pods' warning and error lines (LOG_LEVEL=warn), counted by message, so a refusal's cause is visible. */
function printWarnings(pods: BenchGateway[]) {
  const counts = new Map<string, number>();
  for (const line of pods.flatMap((p) => p.logs)) {
    if (!/"level":(40|50|60)/.test(line)) continue;
    const msg = /"msg":"([^"]*)"/.exec(line)?.[1] ?? line.slice(0, 120);
    counts.set(msg, (counts.get(msg) ?? 0) + 1);
  }
  if (counts.size > 0) console.log(`  pod warnings: ${[...counts].map(([m, n]) => `${n} × ${m}`).join("; ")}`);
}

/** Why sends were refused and sockets resynced, from the pods' counters (summed over the pods, non-zero only). */
async function printRefusals(pods: BenchGateway[]) {
  const totals = new Map<string, number>();
  const wanted = /^(chat_message_writer_refused_total|chat_resyncs_total|chat_redis_command_failures_total)\{/;
  for (const p of pods) {
    const text = await (await fetch(`${p.url}/metrics`)).text();
    for (const line of text.split("\n")) {
      if (!wanted.test(line)) continue;
      const at = line.lastIndexOf(" ");
      totals.set(line.slice(0, at), (totals.get(line.slice(0, at)) ?? 0) + Number(line.slice(at + 1)));
    }
  }
  const nonZero = [...totals].filter(([, n]) => n > 0);
  if (nonZero.length > 0) console.log(`  pod counters: ${nonZero.map(([k, n]) => `${k} ${n}`).join("; ")}`);
}

async function closeAll(devices: SdkDevice[]) {
  for (const d of devices) d.close();
  await sleep(500);
}

export async function scalingScenario(runtime: Runtime, flags: ScalingFlags, runId: string): Promise<ScalingReport> {
  const report: ScalingReport = { tables: [], lost: [] };
  const setup = await setUp(runtime, flags.users);
  const rows: (string | number)[][] = [];
  try {
    for (const adapter of flags.adapters) {
      for (const count of flags.pods) {
        const pods = await startPods(setup.cluster, count, adapter);
        const current: { phase?: Phase } = {};
        const devices = await connectPopulation(pods, setup.population, false, () => current.phase);
        const recipientsOf = wire(devices, setup.conversations);
        await quiesce(pods, 15);
        // Idle cost (presence heartbeats, timers, the box's other tenants' effect on them) over 3 s, subtracted
        // from the phase's CPU so the figure is what the deliveries cost.
        const idleStart = {
          redis: (await redisCounters(setup.info)).cpuSeconds,
          cpu: pods.map((p) => processUsage(p.pid).cpuSeconds),
          at: performance.now(),
        };
        await sleep(3_000);
        const before = {
          pods: await Promise.all(pods.map(received)),
          redis: await redisCounters(setup.info),
          cpu: pods.map((p) => processUsage(p.pid).cpuSeconds),
        };
        const phase = new Phase(devices, recipientsOf);
        current.phase = phase;
        const senders = devices.map((d, i) => ({
          device: d,
          conversationId: setup.conversations[Math.floor(i / 4)]!.id,
        }));
        let n = 0;
        const t0 = performance.now();
        await openLoop(flags.rate, flags.seconds, () => {
          const s = senders[(n * 7) % senders.length]!; // a stride, so consecutive sends leave from different pods
          phase.send(s.device, s.conversationId, `${runId}-${adapter}-${count}-${n++}`);
        });
        const drained = await phase.drain(15_000);
        await sleep(500); // the last publishes' copies to pods whose sockets were not the last to get them
        const windowS = (performance.now() - t0) / 1000;
        const after = {
          pods: await Promise.all(pods.map(received)),
          redis: await redisCounters(setup.info),
          cpu: pods.map((p) => processUsage(p.pid).cpuSeconds),
        };
        const s = phase.summary();
        const deliveries = s.liveDeliveries + s.recoveredBySync + s.recoveredByGap;
        const perPod = after.pods.map((a, i) => sum(a) - sum(before.pods[i]!));
        const byKind = { room: 0, shared: 0, other: 0 } as Record<string, number>;
        after.pods.forEach((a, i) => {
          for (const k of Object.keys(byKind)) byKind[k]! += a[k]! - before.pods[i]![k]!;
        });
        const calls = callDeltas(after.redis.calls, before.redis.calls);
        const publishes = (calls.publish ?? 0) + (calls.spublish ?? 0);
        const receivedTotal = perPod.reduce((a, b) => a + b, 0);
        const idleS = (t0 - idleStart.at) / 1000;
        const redisIdle = ((before.redis.cpuSeconds - idleStart.redis) / idleS) * windowS;
        const podIdle = before.cpu.map((c, i) => ((c - idleStart.cpu[i]!) / idleS) * windowS);
        const redisCpuUs = ((after.redis.cpuSeconds - before.redis.cpuSeconds - redisIdle) * 1e6) / deliveries;
        const podCpu = after.cpu.map((c, i) => c - before.cpu[i]! - podIdle[i]!);
        const podCpuUs = (podCpu.reduce((a, b) => a + b, 0) * 1e6) / deliveries;
        const history = await verifyHistory(
          {
            members: [],
            conversations: setup.conversations.map((c) => ({
              id: c.id,
              token: c.owner.token,
              gatewayUrl: pods[0]!.url,
            })),
          },
          phase.acked(),
        );
        const lost = history.problems.filter((p) => !history.unanswered.includes(p));
        if (lost.length > 0 || s.never > 0)
          report.lost.push(
            `scaling ${adapter} ${count} pods: ${s.never} never delivered; ${lost.slice(0, 3).join("; ")}`,
          );
        console.log(
          `${adapter}, ${count} pods: ${s.acked}/${s.sends} acked (${JSON.stringify(s.answers)}), ` +
            `${deliveries} deliveries ` +
            `(live ${s.liveDeliveries}, sync ${s.recoveredBySync}, gap ${s.recoveredByGap}, never ${s.never})` +
            `${drained ? "" : " (drain timed out)"} in ${windowS.toFixed(1)} s; pods received ${receivedTotal} ` +
            `(room ${byKind.room}, shared ${byKind.shared}, other ${byKind.other}; per pod ${perPod.join(", ")}); ` +
            `Redis calls ${JSON.stringify(calls)}; Redis CPU ${fixed(after.redis.cpuSeconds - before.redis.cpuSeconds, 2)} s; ` +
            `pod CPU above idle ${podCpu.map((c) => fixed(c, 2)).join(", ")} s (idle ${podIdle.map((c) => fixed(c, 2)).join(", ")} s); history ${lost.length > 0 ? "LOST" : "ok"}`,
        );
        rows.push([
          adapter,
          count,
          s.acked,
          deliveries,
          publishes,
          fixed(publishes / s.acked, 2),
          fixed(receivedTotal / deliveries, 2),
          fixed(receivedTotal / count / deliveries, 3),
          `${fixed(Math.min(...perPod) / deliveries, 3)}–${fixed(Math.max(...perPod) / deliveries, 3)}`,
          fixed(redisCpuUs, 1),
          fixed(podCpuUs, 0),
          fixed(podCpuUs / count, 0),
          lost.length > 0 || s.never > 0 ? "LOST" : "ok",
        ]);
        printWarnings(pods);
        await printRefusals(pods);
        await closeAll(devices);
        await Promise.all(pods.map((p) => setup.cluster.stopExtra(p)));
      }
    }
  } finally {
    await setup.cleanup();
  }
  report.tables.push(
    `Fan-out cost by pods (1:1 traffic, ${flags.users} users × 2 devices on 2 different pods, ${flags.rate} sends/s ` +
      `for ${flags.seconds} s, markers off)\n\n` +
      markdownTable(
        [
          "adapter",
          "pods",
          "acked",
          "deliveries",
          "PUBLISH+SPUBLISH",
          "publishes / msg",
          "pub/sub msgs received by all pods / delivery",
          "per pod / delivery (mean)",
          "per pod / delivery (min–max)",
          "Redis CPU µs / delivery (above idle)",
          "all pods' CPU µs / delivery (above idle)",
          "per pod",
          "history",
        ],
        rows,
      ),
  );
  return report;
}

export async function stormScenario(runtime: Runtime, flags: ScalingFlags, runId: string): Promise<ScalingReport> {
  const report: ScalingReport = { tables: [], lost: [] };
  const setup = await setUp(runtime, flags.stormUsers);
  try {
    const pods = await startPods(setup.cluster, flags.stormPods, flags.stormAdapter);
    const current: { phase?: Phase } = {};
    const started = performance.now();
    const devices = await connectPopulation(pods, setup.population, true, () => current.phase);
    console.log(
      `${devices.length} devices on ${pods.length} pods in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    const recipientsOf = wire(devices, setup.conversations);
    await quiesce(pods, 20);
    const victim = pods[pods.length - 1]!;
    const survivors = pods.slice(0, -1);
    const onVictim = devices.filter((d) => d.url === victim.url);
    const before = await redisCounters(setup.info);
    const cpuBefore = cpuSeconds(survivors);
    const phase = new Phase(devices, recipientsOf);
    current.phase = phase;
    const senders = devices.map((d, i) => ({ device: d, conversationId: setup.conversations[Math.floor(i / 4)]!.id }));
    let n = 0;
    const sendOne = () => {
      // Only from connected devices: a send on a dropped socket would only measure the 15 s ack timeout.
      for (let tries = 0; tries < senders.length; tries++) {
        const s = senders[(n * 7 + tries) % senders.length]!;
        if (!s.device.socket.connected) continue;
        phase.send(s.device, s.conversationId, `${runId}-storm-${n}`);
        break;
      }
      n++;
    };
    // Traffic for 3 s, the kill, then traffic on while the victim's devices come back.
    const traffic = openLoop(flags.stormRate, 3 + 20, sendOne);
    await sleep(3_000);
    const killedAt = performance.now();
    const reconnected: number[] = [];
    const synced: number[] = [];
    const failures: string[] = [];
    const back = onVictim.map(
      (d, i) =>
        new Promise<void>((resolve) => {
          d.socket.once("disconnect", () => {
            // The SDK's first reconnection delay: 1 s ± 50%.
            const delay = 1_000 * (0.5 + Math.random());
            setTimeout(() => {
              const target = survivors[i % survivors.length]!.url;
              d.reconnectTo(target, () => reconnected.push(performance.now() - killedAt))
                .then(() => {
                  synced.push(performance.now() - killedAt);
                })
                .catch((err: unknown) => failures.push(String(err)))
                .finally(resolve);
            }, delay);
          });
        }),
    );
    victim.process.kill("SIGKILL");
    await Promise.race([Promise.all(back), sleep(60_000)]);
    const allBackMs = performance.now() - killedAt;
    await traffic;
    const drained = await phase.drain(30_000);
    const after = await redisCounters(setup.info);
    const cpuAfter = cpuSeconds(survivors);
    const s = phase.summary();
    const history = await verifyHistory(
      {
        members: [],
        conversations: setup.conversations.map((c) => ({ id: c.id, token: c.owner.token, gatewayUrl: pods[0]!.url })),
      },
      phase.acked(),
    );
    const lost = history.problems.filter((p) => !history.unanswered.includes(p));
    if (lost.length > 0 || s.never > 0)
      report.lost.push(`storm: ${s.never} never delivered; ${lost.slice(0, 3).join("; ")}`);
    const calls = callDeltas(after.calls, before.calls);
    const interesting = ["ssubscribe", "sunsubscribe", "subscribe", "unsubscribe", "psubscribe", "spublish", "publish"];
    const total = Object.values(calls).reduce((a, b) => a + b, 0);
    console.log(
      `storm: ${onVictim.length} devices on the killed pod; reconnected ${reconnected.length}, synced ${synced.length}` +
        ` (handshakes refused and retried: ${onVictim.reduce((a, d) => a + d.counters.reconnectFailures, 0)})` +
        ` (failures ${failures.length}${failures.length ? `: ${failures.slice(0, 3).join("; ")}` : ""}); ` +
        `all back in ${(allBackMs / 1000).toFixed(2)} s; sends ${s.sends}, answers ${JSON.stringify(s.answers)}, ` +
        `deliveries live ${s.liveDeliveries} sync ${s.recoveredBySync} gap ${s.recoveredByGap} never ${s.never}` +
        `${drained ? "" : " (drain timed out)"}; Redis calls over the window ${JSON.stringify(calls)}; Redis CPU ` +
        `${fixed(after.cpuSeconds - before.cpuSeconds, 2)} s; surviving pods' CPU ${fixed(cpuAfter - cpuBefore, 2)} s; ` +
        `history ${lost.length > 0 ? "LOST" : history.unanswered.length > 0 ? "unverified" : "ok"}`,
    );
    report.tables.push(
      `Reconnect storm (${flags.stormPods} pods, ${devices.length} devices, ${flags.stormAdapter} adapter, ` +
        `${flags.stormRate} 1:1 sends/s throughout; one pod SIGKILLed)\n\n` +
        markdownTable(
          [
            "devices on killed pod",
            "reconnected p50 / p99 / last (s)",
            "synced p50 / p99 / last (s)",
            "acked sends",
            "sends not acked (most in flight on the killed pod)",
            "delivered by sync",
            "never",
            "history",
          ],
          [
            [
              onVictim.length,
              `${fixed(percentile(reconnected, 50) / 1000, 2)} / ${fixed(percentile(reconnected, 99) / 1000, 2)} / ${fixed(Math.max(...reconnected) / 1000, 2)}`,
              `${fixed(percentile(synced, 50) / 1000, 2)} / ${fixed(percentile(synced, 99) / 1000, 2)} / ${fixed(Math.max(...synced) / 1000, 2)}`,
              s.acked,
              s.sends - s.acked,
              s.recoveredBySync,
              s.never,
              lost.length > 0 || s.never > 0 ? "LOST" : "ok",
            ],
          ],
        ) +
        `\n\nRedis commands from the kill's window (3 s before it to the end of the drain), INFO commandstats deltas\n\n` +
        markdownTable(
          ["command", "calls"],
          [
            ...interesting.map((c) => [c.toUpperCase(), calls[c] ?? 0]),
            ["all commands", total],
            ["Redis CPU (s)", fixed(after.cpuSeconds - before.cpuSeconds, 2)],
          ],
        ),
    );
    printWarnings(pods);
    await closeAll(devices);
  } finally {
    await setup.cleanup();
  }
  return report;
}
