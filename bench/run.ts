// `npm run bench -- [flags]`: starts real gateways on a scratch database and the local Redis, registers one
// population of users, and runs the scenarios with SDK-like devices: groups (2..1000 members), saturation (a rate
// sweep of 1:1 traffic against the gateways and against a bare Socket.IO relay, plus idle memory of both) and
// overload (twice the capacity); and, by name only, reactions (a reaction storm against 1:1 traffic). Prints figures and Markdown rows for bench/RESULTS.md; exits 1 only when messages
// were lost. See bench/README.md for the flags and what each figure means. The older single-scenario throughput
// bench is `npm run bench:throughput`.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { pickRuntime, startBenchCluster, type Runtime } from "./cluster.js";
import { Context, quiesce, type Flags } from "./scenarios/common.js";
import { groupsScenario } from "./scenarios/groups.js";
import { overloadScenario } from "./scenarios/overload.js";
import { reactionsScenario } from "./scenarios/reactions.js";
import { saturationScenario } from "./scenarios/saturation.js";
import { scalingScenario, stormScenario, type ScalingFlags } from "./scenarios/scaling.js";

const { values: flags } = parseArgs({
  options: {
    scenario: { type: "string", default: "all" },
    sizes: { type: "string", default: "2,10,100,1000" },
    seconds: { type: "string" },
    "group-seconds": { type: "string", default: "15" },
    "big-group-seconds": { type: "string", default: "60" },
    users: { type: "string", default: "1000" },
    rates: { type: "string", default: "100,250,500,1000,1500,2000,3000,4000,6000" },
    "step-seconds": { type: "string", default: "10" },
    rate: { type: "string" },
    "overload-seconds": { type: "string", default: "20" },
    idle: { type: "string", default: "2000" },
    "budget-minutes": { type: "string", default: "15" },
    "storm-members": { type: "string", default: "100" },
    "storm-seconds": { type: "string", default: "15" },
    "storm-rate": { type: "string", default: "200" },
    pods: { type: "string", default: "2,4,6" },
    adapters: { type: "string", default: "classic,sharded" },
    "scale-users": { type: "string", default: "240" },
    "scale-rate": { type: "string", default: "100" },
    "scale-seconds": { type: "string", default: "10" },
    "kill-pods": { type: "string", default: "4" },
    "kill-users": { type: "string", default: "1000" },
    "kill-rate": { type: "string", default: "50" },
    gateways: { type: "string", default: "2" },
    adapter: { type: "string", default: "sharded" },
    runtime: { type: "string" },
    help: { type: "boolean", default: false },
  },
});

if (flags.help) {
  console.log(readFileSync(new URL("./README.md", import.meta.url), "utf8"));
  process.exit(0);
}

function int(name: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in ${min}..${max}`);
  return n;
}
const ints = (name: string, raw: string, min: number, max: number) => raw.split(",").map((v) => int(name, v, min, max));

// These bring their own private Redis and gateways (several configurations each), so no shared cluster is started.
const SELF_CONTAINED = { scaling: scalingScenario, storm: stormScenario };
const selfContained = flags.scenario.split(",").filter((s) => s in SELF_CONTAINED) as (keyof typeof SELF_CONTAINED)[];
const adapters = flags.adapters.split(",");
if (!adapters.every((a) => a === "classic" || a === "sharded")) throw new Error("--adapters: classic,sharded or one");
const scalingFlags: ScalingFlags = {
  pods: ints("pods", flags.pods, 1, 8),
  adapters: adapters as ScalingFlags["adapters"],
  users: int("scale-users", flags["scale-users"], 4, 10_000),
  rate: int("scale-rate", flags["scale-rate"], 1, 10_000),
  seconds: int("scale-seconds", flags["scale-seconds"], 1, 120),
  stormPods: int("kill-pods", flags["kill-pods"], 2, 8),
  stormUsers: int("kill-users", flags["kill-users"], 4, 10_000),
  stormRate: int("kill-rate", flags["kill-rate"], 1, 10_000),
  stormAdapter: flags.adapter as ScalingFlags["stormAdapter"],
};

const SCENARIOS = {
  groups: groupsScenario,
  saturation: saturationScenario,
  overload: overloadScenario,
  reactions: reactionsScenario,
};
type Scenario = keyof typeof SCENARIOS;
// "all" is the original set; the reaction storm is asked for by name (--scenario reactions).
const scenarios = (
  flags.scenario === "all"
    ? ["groups", "saturation", "overload"]
    : flags.scenario.split(",").filter((s) => !(s in SELF_CONTAINED))
) as Scenario[];
for (const s of scenarios)
  if (!(s in SCENARIOS)) throw new Error(`--scenario is all or some of ${Object.keys(SCENARIOS).join(",")}`);

const config: Flags = {
  sizes: ints("sizes", flags.sizes, 2, 10_000),
  seconds: flags.seconds === undefined ? undefined : int("seconds", flags.seconds, 1, 600),
  smallSeconds: int("group-seconds", flags["group-seconds"], 1, 600),
  bigSeconds: int("big-group-seconds", flags["big-group-seconds"], 1, 600),
  users: int("users", flags.users, 2, 10_000),
  rates: ints("rates", flags.rates, 1, 100_000),
  stepSeconds: int("step-seconds", flags["step-seconds"], 1, 120),
  rate: flags.rate === undefined ? undefined : int("rate", flags.rate, 1, 100_000),
  overloadSeconds: int("overload-seconds", flags["overload-seconds"], 1, 120),
  idle: int("idle", flags.idle, 0, 20_000),
  budgetMinutes: int("budget-minutes", flags["budget-minutes"], 1, 120),
  stormMembers: int("storm-members", flags["storm-members"], 2, 10_000),
  stormSeconds: int("storm-seconds", flags["storm-seconds"], 1, 600),
  stormRate: int("storm-rate", flags["storm-rate"], 1, 100_000),
};
// The storm's group is drawn from the 1:1 population, whose users' first devices react.
if (scenarios.includes("reactions") && config.stormMembers > config.users)
  throw new Error("--storm-members must not exceed --users");
const gateways = int("gateways", flags.gateways, 1, 8);
if (flags.adapter !== "classic" && flags.adapter !== "sharded") throw new Error("--adapter is classic or sharded");
if (flags.runtime !== undefined && flags.runtime !== "dist" && flags.runtime !== "tsx")
  throw new Error("--runtime is dist or tsx");

async function runSelfContained(runtime: Runtime, runId: string) {
  const lost: string[] = [];
  const tables: string[] = [];
  for (const name of selfContained) {
    console.log(`\n== ${name}`);
    const report = await SELF_CONTAINED[name](runtime, scalingFlags, runId);
    lost.push(...report.lost);
    tables.push(...report.tables);
  }
  if (tables.length > 0) console.log(`\n## Rows for bench/RESULTS.md\n\n${tables.join("\n\n")}`);
  return lost;
}

async function main() {
  const { runtime, why } = pickRuntime(flags.runtime as Runtime | undefined);
  const runId = randomBytes(4).toString("hex");
  const started = Date.now();
  if (selfContained.length > 0) {
    console.log(`bench ${runId}: ${selfContained.join(", ")} (private Redis, their own gateways)`);
    console.log(`gateways run from ${runtime === "dist" ? "dist/main.js" : "src/main.ts through tsx"} (${why})`);
    console.log(
      `machine: ${cpus().length} cores, ${cpus()[0]?.model ?? "?"}, load average ${loadavg()[0]!.toFixed(2)}`,
    );
    const lost = await runSelfContained(runtime, runId);
    console.log(`\nwhole run: ${((Date.now() - started) / 1000).toFixed(0)} s`);
    if (lost.length > 0) {
      console.error(`FAILED: messages were lost:\n${lost.join("\n")}`);
      process.exit(1);
    }
    if (scenarios.length === 0) process.exit(0);
  }
  console.log(`bench ${runId}: scenarios ${scenarios.join(", ")}; ${gateways} gateway(s), adapter ${flags.adapter}`);
  console.log(`gateways run from ${runtime === "dist" ? "dist/main.js" : "src/main.ts through tsx"} (${why})`);
  console.log(`machine: ${cpus().length} cores, ${cpus()[0]?.model ?? "?"}, load average ${loadavg()[0]!.toFixed(2)}`);
  // Groups up to the biggest size asked for; no rate limits, so the figures are the gateway's, not the limiter's.
  const groupMax = String(Math.max(256, config.stormMembers, ...config.sizes));
  const cluster = await startBenchCluster(gateways, flags.adapter as "classic" | "sharded", runtime, {
    GROUP_MAX_MEMBERS: groupMax,
  });
  const ctx = new Context(runId, cluster, config);
  try {
    for (const scenario of scenarios) {
      if (ctx.overBudget(`the ${scenario} scenario`)) continue;
      const waited = await quiesce(cluster.gateways);
      console.log(
        `\n== ${scenario} (${((Date.now() - started) / 1000).toFixed(0)} s into the run` +
          `${waited > 2 ? `, after waiting ${waited.toFixed(0)} s for the gateways to go idle` : ""})`,
      );
      await SCENARIOS[scenario](ctx);
    }
  } finally {
    ctx.direct?.close();
    const warnings = cluster.gateways.flatMap((g) => g.logs).filter((l) => /"level":(40|50|60)/.test(l));
    if (warnings.length > 0)
      console.log(
        `\ngateway warning/error log lines: ${warnings.length}; first ones:\n${warnings.slice(0, 5).join("\n")}`,
      );
    await cluster.cleanup();
    ctx.printTables();
  }
  console.log(`\nwhole run: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (ctx.lost.length > 0) {
    console.error(`FAILED: messages were lost:\n${ctx.lost.join("\n")}`);
    process.exit(1);
  }
  if (ctx.unverified.length > 0) {
    console.error(`NO VERDICT: history could not be read back:\n${ctx.unverified.join("\n")}`);
    process.exit(2);
  }
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(2); // the bench itself failed: no verdict on the gateway
});
