// Twice the capacity (the saturation the sweep measured in this run, or --rate) offered for --overload-seconds on
// the 1:1 population: does every send get an answer (ok, unavailable, rate_limited) within 1 s, do admitted sends
// stay fast, does any gateway crash, and does any acked message miss a device without a sync:required to it?
import { performance } from "node:perf_hooks";
import { sumCounters, diffCounters } from "../devices.js";
import { countsText, fixed, p50p99 } from "../stats.js";
import { Phase, openLoop } from "../traffic.js";
import { cpuSeconds, type Context } from "./common.js";
import { directOnGateways, ownersOf, printBreakdown, refusals, sendBreakdown } from "./saturation.js";

const ANSWERS = new Set(["ok", "unavailable", "rate_limited"]);

export async function overloadScenario(ctx: Context) {
  // Below the sweep's first rate, that rate is the best upper bound of the capacity there is.
  const measured = ctx.capacity === 0 ? ctx.flags.rates[0]! : ctx.capacity;
  const rate = ctx.flags.rate ?? Math.round(2 * (measured ?? 1000));
  const source = ctx.flags.rate
    ? "--rate"
    : ctx.capacity
      ? "2 x the saturation measured above"
      : ctx.capacity === 0
        ? "2 x the sweep's first rate, which was not sustained"
        : "2 x 1000 (default)";
  const target = await directOnGateways(ctx);
  const phase = new Phase(target.devices, target.recipientsOf);
  ctx.phase = phase;
  const before = sumCounters(target.devices);
  const crashesBefore = ctx.crashes();
  const breakdownBefore = await sendBreakdown(ctx.cluster.gateways);
  const refusedBefore = await refusals(ctx.cluster.gateways.map((g) => g.url));
  const loadGenBefore = process.cpuUsage();
  const started = performance.now();
  const cpuBefore = cpuSeconds(ctx.cluster.gateways);
  const sent = await openLoop(rate, ctx.flags.overloadSeconds, (i) => {
    const s = target.senders[i % target.senders.length]!;
    phase.send(s.device, s.conversationId, `${ctx.runId}-overload-${i}`);
  });
  const drained = await phase.drain(20_000);
  const cpu = cpuSeconds(ctx.cluster.gateways) - cpuBefore;
  ctx.phase = undefined;
  const counts = diffCounters(sumCounters(target.devices), before);
  const s = phase.summary();
  const crashes = ctx.crashes() - crashesBefore;
  const breakdownAfter = await sendBreakdown(ctx.cluster.gateways);
  const refused = await refusals(ctx.cluster.gateways.map((g) => g.url));
  for (const [reason, n] of refusedBefore) refused.set(reason, (refused.get(reason) ?? 0) - n);
  const loadGen = process.cpuUsage(loadGenBefore);
  const loadGenShare = (loadGen.user + loadGen.system) / 1000 / (performance.now() - started);
  const unanswered = (s.answers.timeout ?? 0) + (s.answers.unanswered ?? 0);
  const otherAnswers = Object.entries(s.answers).filter(([code]) => !ANSWERS.has(code) && code !== "timeout");
  const within1s = s.answeredWithin1s / Math.max(1, s.sends);
  const maxAnswer = s.answerMs.reduce((a, b) => Math.max(a, b), 0);
  const history = await ctx.checkHistory("overload", [phase], ownersOf(target));
  if (s.neverAfterSync > 0) ctx.lost.push(`overload: ${s.neverAfterSync} missing on devices after their sync`);

  console.log(
    `overload: offered ${rate}/s (${source}) for ${ctx.flags.overloadSeconds} s, sent ${sent.sent} ` +
      `(${fixed(sent.sent / sent.seconds, 0)}/s)${drained ? "" : "; the 20 s drain timed out"}`,
  );
  console.log(`  answers: ${countsText(s.answers)}; unanswered in 15 s: ${unanswered}`);
  console.log(`  answered within 1 s: ${fixed(within1s * 100, 2)}%; slowest answer ${fixed(maxAnswer, 0)} ms`);
  console.log(`  admitted (ok) send->ack p50 / p99 ms: ${p50p99(s.ackMs)}`);
  if (Object.keys(s.lateAnswers).length > 0) {
    console.log(
      `  answered after 1 s: ${countsText(s.lateAnswers)}; sent in second ` +
        Object.entries(s.lateBySecond)
          .map(([second, n]) => `${second}: ${n}`)
          .join(", "),
    );
  }
  printBreakdown(breakdownBefore, breakdownAfter);
  console.log(
    `  refusals by reason (the pods' counter): ${[...refused].map(([r, n]) => `${r} ${n}`).join(", ")}; ` +
      `load generator ${fixed(loadGenShare * 100, 0)}% of a core`,
  );
  if (s.retryAfterMissing > 0) console.log(`  ${s.retryAfterMissing} unavailable answers without details.retryAfterMs`);
  console.log(
    `  acked messages missing live delivery on a device without sync:required: ${s.missedLiveSilently} ` +
      `(not live: recovered by gap fill ${s.recoveredByGap}, by sync ${s.recoveredBySync}, never ${s.never}; ` +
      `${s.lateLive} of the recovered came live later too); ` +
      `sync:required ${counts.syncRequired}`,
  );
  console.log(
    `  crashes ${crashes}, disconnects ${counts.disconnects}, gateway CPU ${fixed(cpu, 1)} s, history ` +
      `${history.verdict}`,
  );
  ctx.table(
    "### Overload (1:1, SDK-like devices)",
    [
      "offered/s",
      "sent",
      "answers",
      "unanswered",
      "answered ≤ 1 s",
      "slowest answer ms",
      "admitted send→ack p50 / p99 ms",
      "acked, missed live without sync:required",
      "crashes",
      "disconnects",
      "history",
    ],
    [
      [
        rate,
        sent.sent,
        countsText(s.answers),
        unanswered,
        `${fixed(within1s * 100, 2)}%`,
        fixed(maxAnswer, 0),
        p50p99(s.ackMs),
        s.missedLiveSilently,
        crashes,
        counts.disconnects,
        s.neverAfterSync > 0 ? "LOST" : history.verdict,
      ],
    ],
  );
  if (otherAnswers.length > 0)
    console.log(
      `  answers other than ok / unavailable / rate_limited: ${countsText(Object.fromEntries(otherAnswers))}`,
    );
}
