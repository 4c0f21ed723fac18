// 1:1 traffic (users in pairs, each user with 2 SDK-like devices on different gateways): a rate sweep to find the
// gateway's saturation sends/s, then the same sweep against the bare relay (bench/relay.ts: 2 processes on the
// same Redis, sharded adapter), then idle memory per connection of both. Ratios come from this one run.
import { performance } from "node:perf_hooks";
import { createConversation } from "../../test/helpers/clients.js";
import { histogramTotals, memoryProbe, probeMemory, type BenchGateway } from "../cluster.js";
import { connectDevices, SdkDevice, type DeviceOptions } from "../devices.js";
import { inBatches } from "../load.js";
import { startRelayCluster } from "../relay-cluster.js";
import { fixed, kb, mb, percentile, sleep } from "../stats.js";
import { Phase, openLoop } from "../traffic.js";
import { cpuSeconds, quiesce, type Context } from "./common.js";

export interface DirectTarget {
  devices: SdkDevice[];
  senders: { device: SdkDevice; conversationId: string }[];
  recipientsOf: (conversationId: string) => SdkDevice[];
  conversations: { id: string; memberIds: string[]; ownerToken: string }[];
  close(): void;
}

/** The 1:1 population on the gateways, created once per run (saturation and overload share it). */
export async function directOnGateways(ctx: Context): Promise<DirectTarget> {
  if (ctx.direct) return ctx.direct as DirectTarget;
  const users = await ctx.users(ctx.flags.users);
  const pairs = Array.from({ length: Math.floor(users.length / 2) }, (_, k) => [users[2 * k]!, users[2 * k + 1]!]);
  const conversations = await inBatches(pairs, 8, async ([a, b]) => {
    const c = await createConversation(ctx.urls[0]!, a!.token, { type: "direct", userId: b!.userId });
    return { id: c.id, memberIds: [a!.userId, b!.userId], ownerToken: a!.token };
  });
  const started = Date.now();
  const options = users.slice(0, pairs.length * 2).flatMap((u, i) => [0, 1].map((k) => ctx.deviceOptions(u, i, k)));
  const target = buildTarget(await connectDevices(options), conversations);
  console.log(
    `1:1 population: ${pairs.length} direct conversations, ${target.devices.length} devices connected in ` +
      `${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  ctx.direct = target;
  return target;
}

/** Devices come in the order user 0 device 0, user 0 device 1, user 1 device 0, ...; users pair up 0-1, 2-3, ... */
function buildTarget(devices: SdkDevice[], conversations: DirectTarget["conversations"]): DirectTarget {
  const byConversation = new Map<string, SdkDevice[]>();
  const senders: DirectTarget["senders"] = [];
  conversations.forEach((c, k) => {
    const four = devices.slice(4 * k, 4 * k + 4);
    byConversation.set(c.id, four);
    for (const d of four) {
      d.follow(c.id);
      senders.push({ device: d, conversationId: c.id });
    }
  });
  return {
    devices,
    senders,
    conversations,
    recipientsOf: (id) => byConversation.get(id) ?? [],
    close: () => devices.forEach((d) => d.close()),
  };
}

interface Step {
  rate: number;
  achieved: number;
  acked: number;
  ackP50: number;
  ackP99: number;
  everyP99: number;
  cpuPerDeliveryUs: number;
  /** `message:delivered` and `message:read` requests the devices sent, per message sent. */
  markersPerMessage: number;
  loadGenCpu: number;
  sustained: boolean;
  why: string;
}

/**
 * Offers each rate of `--rates` for `--step-seconds`, then waits (at most 10 s) for the answers and deliveries.
 * A step is sustained when >= 99% of its sends were acked ok, ack p99 <= 1 s, every acked message reached every
 * device by the end of the wait, and the load generator managed >= 95% of the offered rate. Saturation is the highest
 * rate below which every step was sustained. The sweep stops at the first step that is not, but never before it ran
 * 1000/s (the rate the latency and CPU comparisons are made at). A 5 s warm-up at the first rate comes first, not
 * counted, so JIT and connection warm-up do not fail the first step.
 */
async function sweep(ctx: Context, label: string, target: DirectTarget, processes: BenchGateway[]) {
  const steps: Step[] = [];
  const phases: Phase[] = [];
  const warmup = new Phase(target.devices, target.recipientsOf);
  await openLoop(ctx.flags.rates[0]!, 5, (i) => {
    const s = target.senders[i % target.senders.length]!;
    warmup.send(s.device, s.conversationId, `${ctx.runId}-${label}-warmup-${i}`);
  });
  await warmup.drain(10_000);
  phases.push(warmup);
  await sleep(1_000);
  for (const rate of ctx.flags.rates) {
    if (ctx.overBudget(`${label} ${rate}/s and the rest of its sweep`)) break;
    const phase = new Phase(target.devices, target.recipientsOf);
    ctx.phase = phase;
    const breakdownBefore = label === "gateway" ? await sendBreakdown(processes) : undefined;
    const cpuBefore = cpuSeconds(processes);
    const lgBefore = process.cpuUsage();
    const deliveredBefore = target.devices.reduce((n, d) => n + d.counters.live + d.counters.sync + d.counters.gap, 0);
    const markersBefore = target.devices.reduce((n, d) => n + d.counters.markersSent, 0);
    const t0 = performance.now();
    const sent = await openLoop(rate, ctx.flags.stepSeconds, (i) => {
      const s = target.senders[i % target.senders.length]!;
      phase.send(s.device, s.conversationId, `${ctx.runId}-${label}-${rate}-${i}`);
    });
    const drained = await phase.drain(10_000);
    const busySeconds = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(processes) - cpuBefore;
    const lg = process.cpuUsage(lgBefore);
    ctx.phase = undefined;
    const deliveries =
      target.devices.reduce((n, d) => n + d.counters.live + d.counters.sync + d.counters.gap, 0) - deliveredBefore;
    const s = phase.summary();
    const achieved = sent.sent / sent.seconds;
    const okShare = s.acked / Math.max(1, s.sends);
    const why =
      okShare < 0.99
        ? `only ${fixed(okShare * 100)}% acked ok`
        : s.ackP99 > 1_000
          ? `ack p99 ${fixed(s.ackP99, 0)} ms > 1 s`
          : !drained
            ? `${s.notEverywhere} acked messages not on every device 10 s later`
            : achieved < 0.95 * rate
              ? `load generator reached only ${fixed(achieved, 0)}/s`
              : "";
    const step: Step = {
      rate,
      achieved,
      acked: s.acked / sent.seconds,
      ackP50: s.ackP50,
      ackP99: s.ackP99,
      everyP99: percentile(s.everyDeviceMs, 99),
      cpuPerDeliveryUs: (cpu * 1e6) / Math.max(1, deliveries),
      markersPerMessage:
        (target.devices.reduce((n, d) => n + d.counters.markersSent, 0) - markersBefore) / Math.max(1, s.sends),
      loadGenCpu: (lg.user + lg.system) / 1e6 / busySeconds,
      sustained: why === "",
      why,
    };
    steps.push(step);
    console.log(
      `${label} ${rate}/s: achieved ${fixed(step.achieved, 0)}/s, acked ${fixed(step.acked, 0)}/s, send->ack p50 / ` +
        `p99 ${fixed(step.ackP50)} / ${fixed(step.ackP99)} ms, send->every device p99 ${fixed(step.everyP99)} ms, ` +
        `${fixed(step.cpuPerDeliveryUs, 0)} µs CPU per delivery, ${fixed(step.markersPerMessage)} marker requests ` +
        `per message, load generator ${fixed(step.loadGenCpu * 100, 0)}% ` +
        `of a core; missed live: sync ${s.recoveredBySync}, gap ${s.recoveredByGap} (late live ${s.lateLive}), ` +
        `never ${s.never}` +
        `${step.sustained ? "" : ` -> not sustained: ${why}`}`,
    );
    if (breakdownBefore) printBreakdown(breakdownBefore, await sendBreakdown(processes));
    if (s.neverAfterSync > 0) ctx.lost.push(`${label} ${rate}/s: ${s.neverAfterSync} missing on devices after sync`);
    phases.push(phase);
    if (!step.sustained && rate >= 1000) break;
    await quiesce(processes, 20);
  }
  if (label === "gateway") {
    const history = await ctx.checkHistory("saturation", phases, ownersOf(target));
    console.log(
      `gateway history: ${history.messages} messages in ${history.conversations} conversations, ` +
        (history.verdict === "ok" ? "seqs gapless, every acked send present" : history.verdict),
    );
  }
  const firstFailure = steps.findIndex((s) => !s.sustained);
  const saturation = (firstFailure < 0 ? steps.at(-1) : steps[firstFailure - 1])?.rate ?? 0;
  return { steps, saturation, at1000: steps.find((s) => s.rate === 1000) };
}

// Where a send's time goes inside the gateways (their histograms' sums and counts, all pods together): waiting in
// the writer's queue, the batch statement (sent to rows back, so it includes event-loop delay in the pod), the whole
// send->ack as the pod sees it, and the batches' mean size.
const BREAKDOWN = {
  wait: "chat_message_writer_queue_wait_seconds",
  statement: "chat_message_writer_batch_seconds",
  size: "chat_message_writer_batch_size",
  ack: "chat_send_to_ack_seconds",
} as const;
type Breakdown = Record<keyof typeof BREAKDOWN, { sum: number; count: number }> & { refused: Map<string, number> };

/** chat_message_writer_refused_total by reason, summed over the gateways. */
export async function refusals(urls: string[]): Promise<Map<string, number>> {
  const byReason = new Map<string, number>();
  for (const url of urls) {
    const text = await (await fetch(`${url}/metrics`)).text().catch(() => "");
    for (const m of text.matchAll(/^chat_message_writer_refused_total\{reason="([a-z_]+)"\} (\S+)$/gm)) {
      byReason.set(m[1]!, (byReason.get(m[1]!) ?? 0) + Number(m[2]));
    }
  }
  return byReason;
}

export async function sendBreakdown(processes: BenchGateway[]): Promise<Breakdown> {
  const totals = { refused: await refusals(processes.map((g) => g.url)) } as Breakdown;
  for (const [key, name] of Object.entries(BREAKDOWN) as [keyof typeof BREAKDOWN, string][]) {
    totals[key] = { sum: 0, count: 0 };
    for (const g of processes) {
      const t = await histogramTotals(g.url, name).catch(() => ({ sum: 0, count: 0 }));
      totals[key].sum += t.sum;
      totals[key].count += t.count;
    }
  }
  return totals;
}

export function printBreakdown(before: Breakdown, after: Breakdown) {
  const mean = (k: keyof typeof BREAKDOWN, scale: number) =>
    fixed(((after[k].sum - before[k].sum) * scale) / Math.max(1, after[k].count - before[k].count), 2);
  console.log(
    `  in the pods (means): send->ack ${mean("ack", 1000)} ms = queue wait ${mean("wait", 1000)} ms + batch ` +
      `statement ${mean("statement", 1000)} ms + the rest; ${after.statement.count - before.statement.count} ` +
      `batches of ${mean("size", 1)} sends`,
  );
  const refused = [...after.refused]
    .map(([reason, n]) => [reason, n - (before.refused.get(reason) ?? 0)] as const)
    .filter(([, n]) => n > 0);
  if (refused.length > 0) console.log(`  refused by the pods: ${refused.map(([r, n]) => `${r} ${n}`).join(", ")}`);
}

/** For the history check: each direct conversation read by its first member. */
export const ownersOf = (target: DirectTarget) =>
  new Map(target.conversations.map((c) => [c.id, { userId: c.memberIds[0]!, token: c.ownerToken }]));

/**
 * RSS and live heap (after a full GC, through bench/memory-probe.mjs) of a fresh idle process, before and after
 * `count` idle connections.
 */
async function idleMemory(
  url: string,
  pid: number,
  probeFile: string,
  optionsFor: (i: number) => DeviceOptions,
  count: number,
) {
  await sleep(3_000);
  const before = await probeMemory(pid, probeFile);
  const devices = await connectDevices(Array.from({ length: count }, (_, i) => ({ ...optionsFor(i), url })));
  await sleep(3_000);
  const after = await probeMemory(pid, probeFile);
  devices.forEach((d) => d.close());
  return {
    idleRss: before.rss,
    idleHeap: before.heapUsed,
    rssPerConnection: (after.rss - before.rss) / count,
    heapPerConnection: (after.heapUsed - before.heapUsed) / count,
  };
}

export async function saturationScenario(ctx: Context) {
  const gateway = await directOnGateways(ctx);
  const product = await sweep(ctx, "gateway", gateway, ctx.cluster.gateways);
  ctx.capacity = product.saturation;

  // Quiet the gateways' devices' own traffic is nil while idle; the relay gets devices of its own.
  const relays = await startRelayCluster(2, ctx.runId);
  let relay: Awaited<ReturnType<typeof sweep>> | undefined;
  let relayIdle: Awaited<ReturnType<typeof idleMemory>> | undefined;
  let gatewayIdle: Awaited<ReturnType<typeof idleMemory>> | undefined;
  const users = await ctx.users(ctx.flags.users);
  try {
    await relays.addConversations(gateway.conversations);
    const relayOptions = (i: number, k: number): DeviceOptions => ({
      url: relays.relays[(i + k) % relays.relays.length]!.url,
      auth: { userId: users[i]!.userId },
      userId: users[i]!.userId,
      onMessage: (device, message, how, at) => ctx.phase?.arrive(device, message, how, at),
      onLateLive: (device, message) => ctx.phase?.lateLive(device, message),
    });
    const count = gateway.conversations.length * 2;
    const relayDevices = await connectDevices(
      Array.from({ length: count }).flatMap((_, i) => [relayOptions(i, 0), relayOptions(i, 1)]),
    );
    const relayTarget = buildTarget(relayDevices, gateway.conversations);
    try {
      relay = await sweep(ctx, "relay", relayTarget, relays.relays);
    } finally {
      relayTarget.close();
    }
    if (ctx.flags.idle > 0) {
      const relayProbe = memoryProbe();
      const extraRelay = await relays.startExtra(relayProbe);
      relayIdle = await idleMemory(
        extraRelay.url,
        extraRelay.pid,
        relayProbe.file,
        (i) => relayOptions(i % users.length, 0),
        ctx.flags.idle,
      );
      // As a production pod starts: migrations are the job of `npm run db:migrate` (a Kubernetes Job), not the pod's.
      const gatewayProbe = memoryProbe();
      const extraGateway = await ctx.cluster.startExtra({
        ...gatewayProbe,
        env: { ...gatewayProbe.env, MIGRATE_ON_START: "off" },
      });
      gatewayIdle = await idleMemory(
        extraGateway.url,
        extraGateway.pid,
        gatewayProbe.file,
        (i) => ctx.deviceOptions(users[i % users.length]!, 0),
        ctx.flags.idle,
      );
      await ctx.cluster.stopExtra(extraGateway);
    }
  } finally {
    await relays.cleanup();
  }

  const ratio = (a: number | undefined, b: number | undefined, digits = 2) =>
    a !== undefined && b !== undefined && b > 0 ? fixed(a / b, digits) : "-";
  if (!relay) throw new Error("the relay sweep did not run");
  const shown = (saturation: number) => (saturation > 0 ? String(saturation) : `< ${ctx.flags.rates[0]}`);
  const p = product.at1000;
  const r = relay.at1000;
  console.log(
    `saturation: gateway ${shown(product.saturation)} sends/s, relay ${shown(relay.saturation)} sends/s ` +
      `(ratio ${ratio(product.saturation, relay.saturation)}); the sweep's rates: ${ctx.flags.rates.join(", ")}`,
  );
  const stepRows = [...product.steps.map((s) => stepRow("gateway", s)), ...relay.steps.map((s) => stepRow("relay", s))];
  ctx.table(
    "### Saturation sweep (1:1, 2 SDK-like devices per user)",
    [
      "target",
      "offered/s",
      "achieved/s",
      "acked/s",
      "send→ack p50 / p99 ms",
      "send→every device p99 ms",
      "CPU µs / delivery",
      "load gen CPU",
      "sustained",
    ],
    stepRows,
  );
  const memoryCells = (m: typeof gatewayIdle) =>
    m
      ? [`${mb(m.idleRss)} MB`, `${kb(m.rssPerConnection)} KB`, `${mb(m.idleHeap)} MB`, `${kb(m.heapPerConnection)} KB`]
      : ["-", "-", "-", "-"];
  ctx.table(
    "### Gateway vs bare relay (same run)",
    ["figure", "gateway", "relay", "gateway ÷ relay"],
    [
      [
        "saturation sends/s",
        shown(product.saturation),
        shown(relay.saturation),
        product.saturation > 0 ? ratio(product.saturation, relay.saturation) : "-",
      ],
      [
        "CPU µs per delivery at 1000/s",
        fixed(p?.cpuPerDeliveryUs ?? NaN, 0),
        fixed(r?.cpuPerDeliveryUs ?? NaN, 0),
        ratio(p?.cpuPerDeliveryUs, r?.cpuPerDeliveryUs),
      ],
      ["send→ack p50 ms at 1000/s", fixed(p?.ackP50 ?? NaN), fixed(r?.ackP50 ?? NaN), ratio(p?.ackP50, r?.ackP50)],
      ["send→ack p99 ms at 1000/s", fixed(p?.ackP99 ?? NaN), fixed(r?.ackP99 ?? NaN), ratio(p?.ackP99, r?.ackP99)],
      ...["idle pod RSS", "RSS per idle connection", "idle pod heap used", "heap per idle connection"].map(
        (name, i) => [
          name,
          memoryCells(gatewayIdle)[i]!,
          memoryCells(relayIdle)[i]!,
          gatewayIdle && relayIdle
            ? ratio(
                [
                  gatewayIdle.idleRss,
                  gatewayIdle.rssPerConnection,
                  gatewayIdle.idleHeap,
                  gatewayIdle.heapPerConnection,
                ][i],
                [relayIdle.idleRss, relayIdle.rssPerConnection, relayIdle.idleHeap, relayIdle.heapPerConnection][i],
              )
            : "-",
        ],
      ),
    ],
  );
}

function stepRow(target: string, s: Step) {
  return [
    target,
    s.rate,
    fixed(s.achieved, 0),
    fixed(s.acked, 0),
    `${fixed(s.ackP50)} / ${fixed(s.ackP99)}`,
    fixed(s.everyP99),
    fixed(s.cpuPerDeliveryUs, 0),
    `${fixed(s.loadGenCpu * 100, 0)}%`,
    s.sustained ? "yes" : `no: ${s.why}`,
  ];
}
