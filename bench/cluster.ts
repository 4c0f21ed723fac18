// Real gateway processes for the benchmark. Unlike test/helpers/gateways.ts it runs the compiled build when it is
// current (tsx's on-the-fly transform would be measured too otherwise) and it waits on /readyz rather than on the
// "listening" log line, because the bench runs the gateways at LOG_LEVEL=warn.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { createScratchDatabase, REDIS_URL, TEST_JWT_SECRET } from "../test/helpers/gateways.js";
import { freePort } from "../test/helpers/free-port.js";

export type Runtime = "dist" | "tsx";

/** BENCH_CPU_PROF_DIR: each gateway writes a V8 CPU profile there (`--cpu-prof`) when the bench stops it. */
const PROFILE_DIR = process.env.BENCH_CPU_PROF_DIR;
const profileArgs = () => (PROFILE_DIR === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`]);

export interface BenchGateway {
  url: string;
  pid: number;
  process: ChildProcess;
  /** Lines the process printed (warnings and errors only at LOG_LEVEL=warn). */
  logs: string[];
}

export interface BenchCluster {
  gateways: BenchGateway[];
  runtime: Runtime;
  /** One more gateway on the same database and Redis, stopped by cleanup like the others. */
  /** One more gateway; `options.env` adds to the cluster's environment, `options.nodeArgs` go before the script. */
  startExtra(options?: { env?: Record<string, string>; nodeArgs?: string[] }): Promise<BenchGateway>;
  stopExtra(gateway: BenchGateway): Promise<void>;
  cleanup(): Promise<void>;
}

/** Newest modification time under a folder, so a stale dist/ is never benchmarked in place of the current source. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const mtime = entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs;
    if (mtime > newest) newest = mtime;
  }
  return newest;
}

export function pickRuntime(forced: Runtime | undefined): { runtime: Runtime; why: string } {
  if (forced === "tsx") return { runtime: "tsx", why: "forced by --runtime tsx" };
  const built = existsSync("dist/main.js");
  if (forced === "dist") {
    if (!built) throw new Error("--runtime dist but dist/main.js does not exist: run `npm run build` first");
    return { runtime: "dist", why: "forced by --runtime dist" };
  }
  if (!built) return { runtime: "tsx", why: "dist/main.js missing (npm run build to bench the compiled code)" };
  const distTime = newestMtime("dist");
  const srcTime = newestMtime("src");
  if (srcTime > distTime) return { runtime: "tsx", why: "src/ is newer than dist/ (npm run build to refresh it)" };
  return { runtime: "dist", why: "dist/ is newer than src/" };
}

async function spawnBenchGateway(
  runtime: Runtime,
  env: Record<string, string>,
  nodeArgs: string[] = [],
): Promise<BenchGateway> {
  return spawnReady(
    [...profileArgs(), ...nodeArgs, ...(runtime === "dist" ? ["dist/main.js"] : ["--import", "tsx", "src/main.ts"])],
    env,
  );
}

/** Node flags and environment that let `probeMemory` read a process's live memory (bench/memory-probe.mjs). */
export function memoryProbe(): { nodeArgs: string[]; env: Record<string, string>; file: string } {
  const file = join(tmpdir(), `bench-memory-${process.pid}-${Math.random().toString(36).slice(2)}.json`);
  return {
    nodeArgs: ["--expose-gc", "--import", "./bench/memory-probe.mjs"],
    env: { MEMORY_PROBE_FILE: file },
    file,
  };
}

/** Collects garbage in a process started with `memoryProbe()` and reads its memory. */
export async function probeMemory(pid: number, file: string): Promise<{ rss: number; heapUsed: number }> {
  rmSync(file, { force: true });
  process.kill(pid, "SIGUSR2");
  for (let i = 0; i < 100 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 50));
  return JSON.parse(readFileSync(file, "utf8")) as { rss: number; heapUsed: number };
}

/** Starts `node <args>` on a free PORT and waits until its /readyz answers 200 (the bench relay uses it too). */
export async function spawnReady(args: string[], env: Record<string, string>): Promise<BenchGateway> {
  const port = await freePort();
  const child = spawn(process.execPath, args, {
    env: { ...process.env, NODE_ENV: "production", HOST: "127.0.0.1", PORT: String(port), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: string[] = [];
  createInterface({ input: child.stdout! }).on("line", (line) => logs.push(line));
  createInterface({ input: child.stderr! }).on("line", (line) => logs.push(line));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}:\n${logs.join("\n")}`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.status === 200) return { url, pid: child.pid!, process: child, logs };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill("SIGKILL");
  throw new Error(`gateway not ready in time:\n${logs.join("\n")}`);
}

export async function startBenchCluster(
  count: number,
  adapter: "classic" | "sharded",
  runtime: Runtime,
  extraEnv: Record<string, string> = {},
): Promise<BenchCluster> {
  const scratch = await createScratchDatabase();
  const env: Record<string, string> = {
    JWT_SECRET: TEST_JWT_SECRET,
    RATE_LIMITS: "off",
    LOG_LEVEL: "warn",
    MIGRATE_ON_START: "on",
    DATABASE_URL: scratch.url,
    REDIS_URL,
    REDIS_ADAPTER: adapter,
    ...extraEnv,
  };
  const gateways: BenchGateway[] = [];
  const extras: BenchGateway[] = [];
  const stopAll = async () => {
    await Promise.all(
      [...gateways, ...extras].map(
        (g) =>
          new Promise<void>((resolve) => {
            if (g.process.exitCode !== null || g.process.signalCode !== null) return resolve();
            g.process.once("exit", () => resolve());
            // A profiled gateway writes its profile on a normal exit only: let it drain first.
            if (PROFILE_DIR === undefined) g.process.kill("SIGKILL");
            else {
              g.process.kill("SIGTERM");
              setTimeout(() => g.process.kill("SIGKILL"), 10_000).unref();
            }
          }),
      ),
    );
  };
  try {
    // The first applies the migrations; the others start together after it.
    gateways.push(await spawnBenchGateway(runtime, env));
    const rest = await Promise.all(Array.from({ length: count - 1 }, () => spawnBenchGateway(runtime, env)));
    gateways.push(...rest);
  } catch (err) {
    await stopAll();
    await scratch.drop();
    throw err;
  }
  return {
    gateways,
    runtime,
    startExtra: async (options = {}) => {
      const g = await spawnBenchGateway(runtime, { ...env, ...options.env }, options.nodeArgs);
      extras.push(g);
      return g;
    },
    stopExtra: async (g) => {
      if (g.process.exitCode !== null || g.process.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        g.process.once("exit", () => resolve());
        g.process.kill("SIGKILL");
      });
    },
    cleanup: async () => {
      await stopAll();
      await scratch.drop();
    },
  };
}

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ, 100 on every Linux this runs on

/** CPU seconds (user + system) and resident memory of one process, read from /proc. */
export function processUsage(pid: number): { cpuSeconds: number; rssBytes: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name may contain spaces, so the fields are counted from after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { cpuSeconds: (utime + stime) / CLOCK_TICKS_PER_SECOND, rssBytes: rssKb * 1024 };
}

/** Whole-machine busy and total jiffies, to tell how saturated the shared cores were over a window. */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const total = values.reduce((a, b) => a + b, 0);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  return { busy: total - idle, total };
}

/** Whether a process has exited (crashed, for a gateway the bench did not stop). */
export const hasExited = (g: BenchGateway) => g.process.exitCode !== null || g.process.signalCode !== null;

/** Sum and count of a Prometheus histogram on one gateway's /metrics (all label sets together). */
export async function histogramTotals(url: string, name: string): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  let count = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}_sum`)) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
    else if (line.startsWith(`${name}_count`)) count += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return { sum, count };
}
