// Groups of 2, 10, 100 and 1000 members: one message a second per group, every member's device SDK-like (markers
// batched per 250 ms, sync on sync:required, gap fill). One population, one device per user connected once,
// users alternating gateways; each size is its own phase on a fresh group drawn from the population.
import { connectDevices, diffCounters, sumCounters, type SdkDevice } from "../devices.js";
import { countsText, fixed, mb, p50p99, sleep } from "../stats.js";
import { Phase, openLoop } from "../traffic.js";
import { hasExited, processUsage } from "../cluster.js";
import { cpuSeconds, quiesce, type Context, type User } from "./common.js";

export async function groupsScenario(ctx: Context) {
  const { sizes } = ctx.flags;
  const biggest = Math.max(...sizes);
  const users = await ctx.users(biggest);
  const connectStart = Date.now();
  const devices = await connectDevices(users.map((u, i) => ctx.deviceOptions(u, i)));
  console.log(`groups: ${devices.length} devices connected in ${((Date.now() - connectStart) / 1000).toFixed(1)} s`);
  const rows: (string | number)[][] = [];
  try {
    for (const size of sizes) {
      if (ctx.overBudget(`groups of ${size}`)) break;
      const seconds = ctx.flags.seconds ?? (size >= 1000 ? ctx.flags.bigSeconds : ctx.flags.smallSeconds);
      rows.push(await groupPhase(ctx, users.slice(0, size), devices.slice(0, size), seconds));
    }
  } finally {
    for (const d of devices) d.close();
  }
  ctx.table(
    "### Groups (1 message/s per group, SDK-like devices)",
    [
      "members",
      "acked / sent",
      "marker events / msg / device",
      "send→ack p50 / p99 ms",
      "send→every device p50 / p99 ms",
      "gateway CPU µs / delivery",
      "not live: sync / gap fill / never (late live)",
      "crashes",
      "disconnects",
      "history",
    ],
    rows,
  );
}

async function groupPhase(ctx: Context, users: User[], members: SdkDevice[], seconds: number) {
  const size = members.length;
  const owner = users[0]!;
  const group = await ctx.createGroup(owner, users.slice(1), `bench ${ctx.runId} ${size}`);
  for (const d of members) d.follow(group.id);
  await sleep(500);

  const waited = await quiesce(ctx.cluster.gateways);
  if (waited > 2) console.log(`groups ${size}: waited ${fixed(waited)} s for the gateways to go idle first`);
  const phase = new Phase(members, () => members);
  const loadGenBefore = process.cpuUsage();
  ctx.phase = phase;
  const before = sumCounters(members);
  const cpuBefore = cpuSeconds(ctx.cluster.gateways);
  const crashesBefore = ctx.crashes();
  const started = Date.now();
  const sent = await openLoop(1, seconds, (i) =>
    phase.send(members[i % size]!, group.id, `${ctx.runId}-g${size}-${i}`),
  );
  const drained = await phase.drain(15_000);
  await sleep(1_000); // the last marker flushes (250 ms) and their fan-out
  const cpu = cpuSeconds(ctx.cluster.gateways) - cpuBefore;
  const elapsed = (Date.now() - started) / 1000;
  const loadGen = process.cpuUsage(loadGenBefore);
  const rss = ctx.cluster.gateways.map((g) => (hasExited(g) ? "exited" : `${mb(processUsage(g.pid).rssBytes)} MB`));
  const counts = diffCounters(sumCounters(members), before);
  ctx.phase = undefined;

  const s = phase.summary();
  const markerEvents = counts.markerEventsRead + counts.markerEventsDelivered + counts.markerEventsCoalesced;
  const perMessagePerDevice = markerEvents / Math.max(1, s.acked * size);
  const deliveries = counts.live + counts.sync + counts.gap;
  const cpuPerDelivery = (cpu * 1e6) / Math.max(1, deliveries);
  const crashes = ctx.crashes() - crashesBefore;
  const history = await ctx.checkHistory(`groups ${size}`, [phase], new Map([[group.id, owner]]));
  if (s.neverAfterSync > 0) ctx.lost.push(`groups ${size}: ${s.neverAfterSync} missing on devices after their sync`);
  const errors: Record<string, number> = {};
  for (const d of members) for (const [k, n] of Object.entries(d.errors)) errors[k] = (errors[k] ?? 0) + n;

  console.log(
    `groups ${size}: ${s.sends} sent in ${fixed(sent.seconds)} s, answers ${countsText(s.answers)}` +
      `${drained ? "" : " (drain timed out)"}; phase ${fixed(elapsed)} s; load generator CPU ` +
      `${fixed(((loadGen.user + loadGen.system) / 1e6 / elapsed) * 100, 0)}% of a core; gateway RSS ${rss.join(", ")}`,
  );
  console.log(
    `  marker events received: read ${counts.markerEventsRead}, delivered ${counts.markerEventsDelivered}, ` +
      `markers ${counts.markerEventsCoalesced} = ${fixed(perMessagePerDevice, 2)} per message per device; ` +
      `markers sent ${counts.markersSent}`,
  );
  console.log(`  send->ack ms p50 / p99 ${p50p99(s.ackMs)}; send->every device ${p50p99(s.everyDeviceMs)}`);
  console.log(
    `  deliveries ${deliveries} (live ${counts.live}), gateway CPU ${fixed(cpu, 2)} s = ${fixed(cpuPerDelivery, 0)} µs ` +
      `per delivery; missed live: sync ${s.recoveredBySync}, gap fill ${s.recoveredByGap}, never ${s.never} ` +
      `(late live copies ${s.lateLive}, ` +
      `${s.missedLiveSilently} without sync:required); sync:required ${counts.syncRequired}`,
  );
  console.log(
    `  crashes ${crashes}, disconnects ${counts.disconnects}, device request errors ${countsText(errors)}, ` +
      `history ${history.verdict}`,
  );
  return [
    size,
    `${s.acked} / ${s.sends}`,
    fixed(perMessagePerDevice, 2),
    p50p99(s.ackMs),
    p50p99(s.everyDeviceMs),
    fixed(cpuPerDelivery, 0),
    `${s.recoveredBySync} / ${s.recoveredByGap} / ${s.never} (${s.lateLive})`,
    crashes,
    counts.disconnects,
    s.neverAfterSync > 0 ? "LOST" : history.verdict,
  ];
}
