// `npm run bench:throughput -- [flags]`: the single-configuration throughput bench (the SDK-like scenarios are
// bench/run.ts). Starts real gateways on a scratch database and the local Redis, measures idle sockets' memory,
// drives an open-loop send rate through socket.io-client devices, prints the figures, and checks that no message
// was lost. See bench/README.md ("The older throughput bench") for its flags.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import type { Device } from "../test/helpers/clients.js";
import { histogramTotals, machineCpu, pickRuntime, processUsage, startBenchCluster, type Runtime } from "./cluster.js";
import { createPopulation, driveLoad, inBatches, openSocket, verifyHistory } from "./load.js";

const { values: flags } = parseArgs({
  options: {
    gateways: { type: "string", default: "2" },
    clients: { type: "string", default: "200" },
    "group-size": { type: "string", default: "5" },
    seconds: { type: "string", default: "15" },
    warmup: { type: "string", default: "3" },
    rate: { type: "string", default: "1000" },
    adapter: { type: "string", default: "sharded" },
    idle: { type: "string", default: "2000" },
    runtime: { type: "string" },
    label: { type: "string", default: "" },
    help: { type: "boolean", default: false },
  },
});

if (flags.help) {
  console.log(readFileSync(new URL("./README.md", import.meta.url), "utf8"));
  process.exit(0);
}

function positiveInt(name: string, raw: string, max: number, min = 1): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in ${min}..${max}`);
  return n;
}

const config = {
  gateways: positiveInt("gateways", flags.gateways, 8),
  clients: positiveInt("clients", flags.clients, 5_000, 2),
  groupSize: positiveInt("group-size", flags["group-size"], 256, 2),
  // Bounded on purpose: the machine is shared, and a benchmark that runs away is worse than a short one.
  seconds: positiveInt("seconds", flags.seconds, 30),
  warmup: positiveInt("warmup", flags.warmup, 10, 0),
  rate: positiveInt("rate", flags.rate, 50_000),
  idle: positiveInt("idle", flags.idle, 20_000, 0),
  adapter: flags.adapter,
  runtime: flags.runtime,
};
if (config.adapter !== "classic" && config.adapter !== "sharded") throw new Error("--adapter is classic or sharded");
if (config.runtime !== undefined && config.runtime !== "dist" && config.runtime !== "tsx")
  throw new Error("--runtime is dist or tsx");

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
const fixed = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "-");

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
function summary(values: number[]) {
  const sorted = Float64Array.from(values).sort();
  const arr = Array.from(sorted);
  return { p50: percentile(arr, 50), p95: percentile(arr, 95), p99: percentile(arr, 99), max: arr.at(-1) ?? NaN };
}

async function serverSendToAck(urls: string[]) {
  const totals = await Promise.all(urls.map((url) => histogramTotals(url, "chat_send_to_ack_seconds")));
  return totals.reduce((a, b) => ({ sum: a.sum + b.sum, count: a.count + b.count }), { sum: 0, count: 0 });
}

async function closeAll(sockets: Device[]) {
  for (const s of sockets) s.close();
  await new Promise((r) => setTimeout(r, 200));
}

async function measureIdle(url: string, pid: number, tokens: string[], count: number) {
  const settle = () => new Promise((r) => setTimeout(r, 3_000));
  await settle();
  const before = processUsage(pid).rssBytes;
  const sockets: Device[] = [];
  const started = Date.now();
  await inBatches(Array.from({ length: count }), 50, async (_, i) => {
    sockets.push(await openSocket(url, tokens[i % tokens.length]!));
  });
  const connectSeconds = (Date.now() - started) / 1000;
  await settle();
  const after = processUsage(pid).rssBytes;
  await closeAll(sockets);
  return { count, before, after, perSocket: (after - before) / count, connectSeconds };
}

async function main() {
  const { runtime, why } = pickRuntime(config.runtime as Runtime | undefined);
  const runId = randomBytes(4).toString("hex");
  console.log(
    `bench ${runId}: ${config.gateways} gateway(s), adapter ${config.adapter}, ${config.clients} devices in groups of ` +
      `${config.groupSize}, ${config.rate} sends/s for ${config.seconds} s after ${config.warmup} s warm-up`,
  );
  console.log(`gateways run from ${runtime === "dist" ? "dist/main.js" : "src/main.ts through tsx"} (${why})`);
  console.log(`machine: ${cpus().length} cores, ${cpus()[0]?.model ?? "?"}, load average ${loadavg()[0]!.toFixed(2)}`);

  const cluster = await startBenchCluster(config.gateways, config.adapter as "classic" | "sharded", runtime);
  const devices: Device[] = [];
  let failed = false;
  try {
    const urls = cluster.gateways.map((g) => g.url);
    const setupStart = Date.now();
    const population = await createPopulation(urls, config.clients, config.groupSize);
    console.log(
      `set-up: ${population.members.length} users, ${population.conversations.length} groups in ` +
        `${((Date.now() - setupStart) / 1000).toFixed(1)} s`,
    );

    if (config.idle > 0) {
      // A fresh gateway of its own, so the argon2 work of set-up and the load's garbage do not blur the figure.
      const g = await cluster.startExtra();
      const idle = await measureIdle(
        g.url,
        g.pid,
        population.members.map((m) => m.token),
        config.idle,
      );
      console.log(
        `idle sockets: ${idle.count} on a fresh gateway (connected in ${idle.connectSeconds.toFixed(1)} s), RSS ` +
          `${mb(idle.before)} -> ${mb(idle.after)} MB = ${(idle.perSocket / 1024).toFixed(1)} KB per idle socket`,
      );
      await cluster.stopExtra(g);
    }

    await inBatches(population.members, 50, async (m, i) => {
      devices[i] = await openSocket(m.gatewayUrl, m.token);
    });

    const usageBefore = cluster.gateways.map((g) => processUsage(g.pid));
    const machineBefore = machineCpu();
    const resultPromise = driveLoad(devices, population, {
      rate: config.rate,
      seconds: config.seconds,
      warmupSeconds: config.warmup,
      groupSize: config.groupSize,
      runId,
    });
    // Gateway CPU over the measured window only: sampled when warm-up ends and when the window closes.
    let windowStart = usageBefore;
    let machineStart = machineBefore;
    await new Promise((r) => setTimeout(r, config.warmup * 1000));
    windowStart = cluster.gateways.map((g) => processUsage(g.pid));
    machineStart = machineCpu();
    const serverAckBefore = await serverSendToAck(urls);
    await new Promise((r) => setTimeout(r, config.seconds * 1000));
    const windowEnd = cluster.gateways.map((g) => processUsage(g.pid));
    const machineEnd = machineCpu();
    const serverAckAfter = await serverSendToAck(urls);
    const serverAckMeanMs =
      ((serverAckAfter.sum - serverAckBefore.sum) / Math.max(1, serverAckAfter.count - serverAckBefore.count)) * 1000;
    const result = await resultPromise;

    const history = await verifyHistory(population, result.ackedByConversation);
    // Sends that timed out were often stored anyway and are still being fanned out: give them a bounded while.
    const lateDeadline = Date.now() + 20_000;
    while (result.deliveredSoFar() < history.expectedDeliveries && Date.now() < lateDeadline)
      await new Promise((r) => setTimeout(r, 250));
    const delivered = result.deliveredSoFar();
    const ack = summary(result.ackLatencies);
    const delivery = summary(result.deliveryLatencies);
    const perSecond = (n: number) => n / result.windowSeconds;
    const machineBusy = (machineEnd.busy - machineStart.busy) / Math.max(1, machineEnd.total - machineStart.total);

    console.log("");
    console.log(`offered sends/s        ${result.offeredRate}`);
    console.log(`achieved sends/s       ${fixed(perSecond(result.sent))}`);
    console.log(`acked sends/s          ${fixed(perSecond(result.ackedInWindow))}`);
    console.log(`deliveries/s           ${fixed(perSecond(result.deliveriesInWindow))}`);
    console.log(
      `send->ack ms           p50 ${fixed(ack.p50)}  p95 ${fixed(ack.p95)}  p99 ${fixed(ack.p99)}  max ${fixed(ack.max)}`,
    );
    console.log(
      `send->delivery ms      p50 ${fixed(delivery.p50)}  p95 ${fixed(delivery.p95)}  p99 ${fixed(delivery.p99)}  ` +
        `max ${fixed(delivery.max)}`,
    );
    console.log(`server send->ack mean  ${fixed(serverAckMeanMs)} ms (gateways' chat_send_to_ack_seconds, window)`);
    console.log(`max sends in flight    ${result.maxInFlight}`);
    const errorText = Object.entries(result.errors)
      .map(([code, n]) => `${code} ${n}`)
      .join(", ");
    console.log(`errors                 ${errorText || "none"}; disconnects ${result.disconnects}`);
    console.log(
      `deliveries after drain ${delivered} of ${history.expectedDeliveries} expected for ` +
        `${history.messages} stored messages (${result.acked} acked in time)`,
    );
    cluster.gateways.forEach((g, i) => {
      const cpu = windowEnd[i]!.cpuSeconds - windowStart[i]!.cpuSeconds;
      console.log(
        `gateway ${i} pid ${g.pid}     RSS ${mb(windowEnd[i]!.rssBytes)} MB, CPU ${cpu.toFixed(2)} s in the ` +
          `${result.windowSeconds} s window (${fixed((cpu / result.windowSeconds) * 100, 0)}% of a core)`,
      );
    });
    console.log(
      `load generator CPU     ${result.loadGeneratorCpuSeconds.toFixed(2)} s over the whole run incl. warm-up and drain`,
    );
    console.log(
      `machine CPU busy       ${fixed(machineBusy * 100, 0)}% of ${cpus().length} cores in the window (all processes)`,
    );
    const lost = delivered < history.expectedDeliveries;
    console.log(
      `history check          ${history.messages} messages in ${history.conversations} conversations: ` +
        (history.problems.length === 0 ? "seqs gapless, every acked send present" : "FAILED"),
    );
    for (const problem of history.problems.slice(0, 20)) console.log(`  ${problem}`);
    const gatewayCpu = windowEnd.reduce((sum, u, i) => sum + u.cpuSeconds - windowStart[i]!.cpuSeconds, 0);
    const row = [
      flags.label || "-",
      config.gateways,
      config.adapter,
      result.offeredRate,
      fixed(perSecond(result.sent), 0),
      fixed(perSecond(result.ackedInWindow), 0),
      fixed(perSecond(result.deliveriesInWindow), 0),
      `${fixed(ack.p50)} / ${fixed(ack.p95)} / ${fixed(ack.p99)}`,
      `${fixed(delivery.p50)} / ${fixed(delivery.p95)} / ${fixed(delivery.p99)}`,
      fixed(serverAckMeanMs),
      errorText || "0",
      `${fixed((gatewayCpu / result.windowSeconds) * 100, 0)}%`,
      `${fixed(machineBusy * 100, 0)}%`,
      history.problems.length === 0 && !lost ? "ok" : "LOST",
    ];
    console.log("");
    console.log(`| ${row.join(" | ")} |`);
    if (history.problems.length > 0 || lost) {
      failed = true;
      console.error("FAILED: messages were lost; these figures are not a result");
    }
    const warnings = cluster.gateways.flatMap((g) => g.logs).filter((l) => /"level":(40|50|60)/.test(l));
    if (warnings.length > 0) {
      console.log(
        `gateway warning/error log lines: ${warnings.length}; first ones:\n${warnings.slice(0, 3).join("\n")}`,
      );
    }
  } finally {
    await closeAll(devices.filter(Boolean));
    await cluster.cleanup();
  }
  process.exit(failed ? 1 : 0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
