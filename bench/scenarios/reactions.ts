// A reaction storm against steady 1:1 traffic: does a group where every member reacts to one message at once slow
// message delivery in other conversations? On the 1:1 population (users in pairs, 2 SDK-like devices each), the
// first `--storm-members` users form a group and one message is sent to it. Two phases of `--storm-seconds` each at
// `--storm-rate` 1:1 sends/s: first without the storm (baseline), then with every group member reacting to that one
// message as fast as it can (each member's first device toggles its reaction on and off in a closed loop, so every
// reaction is a real change: a change number and a row write; each pod announces a message's reactions to each
// member's 2 devices coalesced, one `message:updated` per REACTIONS_FLUSH_MS window, with the numbers it stands for).
import { performance } from "node:perf_hooks";
import { diffCounters, sumCounters, type SdkDevice } from "../devices.js";
import { countsText, fixed, p50p99, percentile } from "../stats.js";
import { Phase, openLoop } from "../traffic.js";
import { histogramTotals } from "../cluster.js";
import { cpuSeconds, quiesce, type Context } from "./common.js";
import { directOnGateways, ownersOf, type DirectTarget } from "./saturation.js";

const EMOJI = "👍";

interface StormResult {
  answers: Record<string, number>;
  ackMs: number[];
  seconds: number;
}

export async function reactionsScenario(ctx: Context) {
  const { stormMembers, stormSeconds, stormRate } = ctx.flags;
  const target = await directOnGateways(ctx);
  // Devices are user 0 device 0, user 0 device 1, user 1 device 0, ...: each member reacts from its first device.
  const users = await ctx.users(stormMembers);
  const reactors = users.map((_, i) => target.devices[2 * i]!);
  const group = await ctx.createGroup(users[0]!, users.slice(1), `bench ${ctx.runId} storm`);
  const sent = await reactors[0]!.send(group.id, `${ctx.runId}-storm-target`, "react to me");
  if (!sent.answer.ok) throw new Error(`the storm's message was refused: ${JSON.stringify(sent.answer)}`);
  const messageId = sent.answer.message.id;
  console.log(`reactions: group of ${stormMembers} members, one message to react to; 1:1 at ${stormRate}/s`);

  const baseline = await trafficPhase(ctx, target, "baseline", stormSeconds, stormRate);
  const during = await trafficPhase(ctx, target, "storm", stormSeconds, stormRate, () =>
    storm(reactors, group.id, messageId, stormSeconds),
  );
  const history = await ctx.checkHistory("reactions", [baseline.phase, during.phase], ownersOf(target));
  const storms = during.storm!;
  const reactionsOk = storms.answers.ok ?? 0;
  const ratio = (a: number, b: number) => fixed(a / b, 2);
  const b = baseline.summary;
  const d = during.summary;
  console.log(
    `  storm: ${reactionsOk} reactions ok in ${fixed(storms.seconds)} s = ${fixed(reactionsOk / storms.seconds, 0)}/s ` +
      `(answers ${countsText(storms.answers)}), reaction ack p50 / p99 ${p50p99(storms.ackMs)} ms; ` +
      `message:updated received ${during.counts.updates} (${fixed(during.counts.updates / storms.seconds, 0)}/s), ` +
      `standing for ${during.counts.updatedChanges} changes ` +
      `(${fixed(during.counts.updatedChanges / Math.max(1, during.counts.updates), 1)} per event)`,
  );
  console.log(
    `  1:1 send->ack p50 ${ratio(percentile(d.ackMs, 50), percentile(b.ackMs, 50))}x, p99 ` +
      `${ratio(percentile(d.ackMs, 99), percentile(b.ackMs, 99))}x; send->every device p50 ` +
      `${ratio(percentile(d.everyDeviceMs, 50), percentile(b.everyDeviceMs, 50))}x, p99 ` +
      `${ratio(percentile(d.everyDeviceMs, 99), percentile(b.everyDeviceMs, 99))}x the baseline; history ${history.verdict}`,
  );
  ctx.table(
    `### Reaction storm (${stormMembers} members toggling a reaction on one message; 1:1 at ${stormRate}/s)`,
    [
      "phase",
      "1:1 acked / sent",
      "1:1 send→ack p50 / p99 ms",
      "1:1 send→every device p50 / p99 ms",
      "1:1 not live: sync / gap fill / never",
      "reactions ok/s",
      "reaction ack p50 / p99 ms",
      "message:updated received/s",
      "changes per message:updated",
      "gateway-side send→ack mean ms",
      "gateway CPU % of a core",
      "load gen CPU % of a core",
      "crashes",
      "disconnects",
      "history",
    ],
    [baseline, during].map((p) => [
      p.label,
      `${p.summary.acked} / ${p.summary.sends}`,
      p50p99(p.summary.ackMs),
      p50p99(p.summary.everyDeviceMs),
      `${p.summary.recoveredBySync} / ${p.summary.recoveredByGap} / ${p.summary.never}`,
      p.storm ? fixed((p.storm.answers.ok ?? 0) / p.storm.seconds, 0) : "-",
      p.storm ? p50p99(p.storm.ackMs) : "-",
      fixed(p.counts.updates / p.seconds, 0),
      p.counts.updates > 0 ? fixed(p.counts.updatedChanges / p.counts.updates, 1) : "-",
      fixed(p.serverAckMs),
      fixed((p.cpu / p.seconds) * 100, 0),
      fixed(p.loadGenCpu * 100, 0),
      p.crashes,
      p.counts.disconnects,
      p.summary.neverAfterSync > 0 ? "LOST" : history.verdict,
    ]),
  );
  ctx.table(
    "### Reaction storm: storm ÷ baseline (1:1 traffic)",
    ["figure", "baseline", "during the storm", "storm ÷ baseline"],
    [
      ["send→ack p50 ms", fixed(percentile(b.ackMs, 50)), fixed(percentile(d.ackMs, 50))],
      ["send→ack p99 ms", fixed(percentile(b.ackMs, 99)), fixed(percentile(d.ackMs, 99))],
      ["send→every device p50 ms", fixed(percentile(b.everyDeviceMs, 50)), fixed(percentile(d.everyDeviceMs, 50))],
      ["send→every device p99 ms", fixed(percentile(b.everyDeviceMs, 99)), fixed(percentile(d.everyDeviceMs, 99))],
    ].map(([name, before, after]) => [name!, before!, after!, ratio(Number(after), Number(before))]),
  );
}

/** One measured stretch of 1:1 sends at `rate`, with `alongside` (the storm) running over the same seconds. */
async function trafficPhase(
  ctx: Context,
  target: DirectTarget,
  label: string,
  seconds: number,
  rate: number,
  alongside?: () => Promise<StormResult>,
) {
  const waited = await quiesce(ctx.cluster.gateways);
  if (waited > 2) console.log(`reactions ${label}: waited ${fixed(waited)} s for the gateways to go idle first`);
  const phase = new Phase(target.devices, target.recipientsOf);
  ctx.phase = phase;
  const before = sumCounters(target.devices);
  const cpuBefore = cpuSeconds(ctx.cluster.gateways);
  const crashesBefore = ctx.crashes();
  const serverBefore = await serverSendToAck(ctx);
  const loadGenBefore = process.cpuUsage();
  const started = performance.now();
  const [sent, storm] = await Promise.all([
    openLoop(rate, seconds, (i) => {
      const s = target.senders[i % target.senders.length]!;
      phase.send(s.device, s.conversationId, `${ctx.runId}-reactions-${label}-${i}`);
    }),
    alongside?.(),
  ]);
  const drained = await phase.drain(15_000);
  const elapsed = (performance.now() - started) / 1000;
  const cpu = cpuSeconds(ctx.cluster.gateways) - cpuBefore;
  const loadGen = process.cpuUsage(loadGenBefore);
  const loadGenCpu = (loadGen.user + loadGen.system) / 1e6 / elapsed;
  // Measured inside the gateways (chat_send_to_ack_seconds): what the shared load generator's own delays leave out.
  const serverAfter = await serverSendToAck(ctx);
  const serverAckMs =
    ((serverAfter.sum - serverBefore.sum) / Math.max(1, serverAfter.count - serverBefore.count)) * 1000;
  ctx.phase = undefined;
  const counts = diffCounters(sumCounters(target.devices), before);
  const summary = phase.summary();
  const crashes = ctx.crashes() - crashesBefore;
  if (summary.neverAfterSync > 0) ctx.lost.push(`reactions ${label}: ${summary.neverAfterSync} missing after sync`);
  console.log(
    `reactions ${label}: 1:1 sent ${sent.sent} (${fixed(sent.sent / sent.seconds, 0)}/s), answers ` +
      `${countsText(summary.answers)}${drained ? "" : " (drain timed out)"}; send->ack ${p50p99(summary.ackMs)} ms, ` +
      `send->every device ${p50p99(summary.everyDeviceMs)} ms; not live: sync ${summary.recoveredBySync}, gap ` +
      `${summary.recoveredByGap}, never ${summary.never}; gateway CPU ${fixed(cpu, 1)} s over ${fixed(elapsed)} s; ` +
      `crashes ${crashes}, disconnects ${counts.disconnects}, sync:required ${counts.syncRequired}; ` +
      `gateway-side send->ack mean ${fixed(serverAckMs)} ms; load generator CPU ${fixed(loadGenCpu * 100, 0)}% of a core`,
  );
  return { label, phase, summary, storm, counts, cpu, seconds: elapsed, crashes, serverAckMs, loadGenCpu };
}

/** Every reactor toggles its reaction on the message in a closed loop until `seconds` have passed. */
async function storm(reactors: SdkDevice[], conversationId: string, messageId: string, seconds: number) {
  const answers: Record<string, number> = {};
  const ackMs: number[] = [];
  const started = performance.now();
  const end = started + seconds * 1000;
  await Promise.all(
    reactors.map(async (device) => {
      for (let on = true; performance.now() < end; on = !on) {
        const t0 = performance.now();
        const code = await device.react(conversationId, messageId, EMOJI, on);
        answers[code] = (answers[code] ?? 0) + 1;
        if (code === "ok") ackMs.push(performance.now() - t0);
      }
    }),
  );
  return { answers, ackMs, seconds: (performance.now() - started) / 1000 };
}

/** Sum and count of the gateways' own send→ack histogram (all gateways together). */
async function serverSendToAck(ctx: Context) {
  const all = await Promise.all(ctx.urls.map((url) => histogramTotals(url, "chat_send_to_ack_seconds")));
  return all.reduce((a, b) => ({ sum: a.sum + b.sum, count: a.count + b.count }), { sum: 0, count: 0 });
}
