// Starts real gateway processes (src/main.ts through tsx) on port 0 against a scratch PostgreSQL database and the
// real Redis, and hands back their URLs and a cleanup. Each call gets its own database and its own REDIS_PREFIX, so
// test files never share state, nor hear each other's Redis traffic (test/realtime/redis-prefix.test.ts).
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import pg from "pg";

export const POSTGRES_ADMIN_URL = process.env.TEST_POSTGRES_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
export const TEST_JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789";

export interface GatewayProcess {
  url: string;
  port: number;
  process: ChildProcess;
  /** Log lines the process printed (JSON), for assertions and for debugging failures. */
  logs: string[];
  /** Sends a signal and resolves with the exit code once the process has exited. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface Cluster {
  gateways: GatewayProcess[];
  urls: string[];
  databaseUrl: string | undefined;
  env: Record<string, string>;
  /** Starts one more gateway on the same database and Redis (e.g. to replace a killed one). */
  startAnother(extraEnv?: Record<string, string>): Promise<GatewayProcess>;
  cleanup(): Promise<void>;
}

export interface ClusterOptions {
  /** "memory" runs without Redis (a single node). @default "sharded" */
  adapter?: "classic" | "sharded" | "memory";
  /** Embedded PGlite in a temp folder instead of PostgreSQL (one gateway only). */
  embedded?: boolean;
  env?: Record<string, string>;
}

export async function createScratchDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `gw_test_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export async function startGateways(count: number, options: ClusterOptions = {}): Promise<Cluster> {
  const adapter = options.adapter ?? "sharded";
  const scratch = options.embedded ? undefined : await createScratchDatabase();
  const dataDir = options.embedded ? mkdtempSync(join(tmpdir(), "gw-embedded-")) : undefined;
  const env: Record<string, string> = {
    JWT_SECRET: TEST_JWT_SECRET,
    RATE_LIMITS: "off",
    // A loaded test machine stalls the loop for reasons of its own; tests of that refusal turn it on.
    WRITER_MAX_LOOP_LAG_MS: "0",
    WRITER_MAX_PUBLISH_LAG_MS: "0",
    LOG_LEVEL: "info",
    MIGRATE_ON_START: "on",
    REDIS_PREFIX: `t${randomBytes(4).toString("hex")}`,
    ...(scratch ? { DATABASE_URL: scratch.url } : { DATA_DIR: dataDir! }),
    ...(adapter === "memory" ? {} : { REDIS_URL, REDIS_ADAPTER: adapter }),
    ...options.env,
  };
  const gateways: GatewayProcess[] = [];
  const startAnother = async (extraEnv: Record<string, string> = {}) => {
    const g = await spawnGateway({ ...env, ...extraEnv });
    gateways.push(g);
    return g;
  };
  try {
    // The first applies the migrations; the rest start together.
    await startAnother();
    await Promise.all(Array.from({ length: count - 1 }, () => startAnother()));
  } catch (err) {
    await Promise.all(gateways.map((g) => g.stop("SIGKILL")));
    await scratch?.drop();
    throw err;
  }
  return {
    gateways,
    get urls() {
      return gateways.map((g) => g.url);
    },
    databaseUrl: scratch?.url,
    env,
    startAnother,
    cleanup: async () => {
      await Promise.all(gateways.map((g) => g.stop("SIGKILL")));
      await scratch?.drop();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function spawnGateway(env: Record<string, string>): Promise<GatewayProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    env: { ...process.env, NODE_ENV: "test", HOST: "127.0.0.1", PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return untilListening(child);
}

/**
 * Follows a started gateway's output (any way of running it: tsx, a built image) until it logs `listening`, and
 * hands it back as a GatewayProcess; rejects with its logs if it exits first or takes longer than `timeoutMs`.
 */
export function untilListening(child: ChildProcess, timeoutMs = 60_000): Promise<GatewayProcess> {
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`gateway did not start in time:\n${logs.join("\n")}`));
    }, timeoutMs);
    const onLine = (line: string) => {
      logs.push(line);
      if (!line.startsWith("{")) return;
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === "listening" && typeof entry.port === "number") {
          clearTimeout(timer);
          resolve({ url: `http://127.0.0.1:${entry.port}`, port: entry.port, process: child, logs, stop });
        }
      } catch {
        // not JSON: keep it in logs only
      }
    };
    createInterface({ input: child.stdout! }).on("line", onLine);
    createInterface({ input: child.stderr! }).on("line", onLine);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code} before listening:\n${logs.join("\n")}`));
    });
  });
}
