// A real local Redis Cluster of the test's own: three masters with a replica each, on free ports, in a temp folder.
// Failover tests kill a master (SIGKILL, as abrupt as a crash) and wait for its replica to take over; the short
// cluster-node-timeout makes that take about a second or two instead of fifteen.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./haproxy.js";

const run = promisify(execFile);

export interface ClusterNode {
  port: number;
  process: ChildProcess;
}

export interface LocalRedisCluster {
  /** Seed nodes, `127.0.0.1:port` each: the value for REDIS_CLUSTER_NODES. */
  seeds: string[];
  /** The same as `redis://:<password>@127.0.0.1:port` (with `password`), else as `seeds`. */
  urls: string[];
  nodes: ClusterNode[];
  /** `redis-cli` against one node; the reply as text. */
  cli(port: number, ...args: string[]): Promise<string>;
  /** The ports currently serving as masters (asked of a live node). */
  masters(): Promise<number[]>;
  /** The port of the master serving `key`'s slot now. */
  masterOf(key: string): Promise<number>;
  /** Whether the master on `port` has a replica in sync, which could take over from it. */
  hasReplica(port: number): Promise<boolean>;
  /** Kills the master serving `key`'s slot (SIGKILL); resolves with its port. */
  killMasterOf(key: string): Promise<number>;
  /** Resolves once every live node reports cluster_state:ok and every slot range has a live master. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  /** cluster-node-timeout in ms: how long a master may be silent before its replica takes over. @default 1000 */
  nodeTimeoutMs?: number;
  /** requirepass (and masterauth) of every node. @default none */
  password?: string;
}

export async function startRedisCluster(options: ClusterOptions = {}): Promise<LocalRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), "redis-cluster-"));
  const ports: number[] = [];
  while (ports.length < 6) {
    const port = await freePort();
    // The cluster bus listens on port + 10000: both must be free and below 65536.
    if (port + 10_000 < 65_536 && !ports.includes(port)) ports.push(port);
  }
  const password = options.password;
  const auth = password === undefined ? [] : ["-a", password, "--no-auth-warning"];
  const nodes = await Promise.all(ports.map((port) => startNode(port, dir, options.nodeTimeoutMs ?? 1_000, password)));
  // A test process that dies without calling stop() must not leave the servers running.
  const killAll = () => {
    for (const n of nodes) n.process.kill("SIGKILL");
  };
  process.once("exit", killAll);
  const cli = async (port: number, ...args: string[]) =>
    (await run("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...auth, ...args])).stdout;
  const alive = () => nodes.filter((n) => n.process.exitCode === null && n.process.signalCode === null);

  const cluster: LocalRedisCluster = {
    seeds: ports.map((p) => `127.0.0.1:${p}`),
    urls: ports.map((p) => (password === undefined ? `127.0.0.1:${p}` : `redis://:${password}@127.0.0.1:${p}`)),
    nodes,
    cli,
    async masters() {
      const text = await cli(alive()[0]!.port, "cluster", "nodes");
      // `<id> <ip>:<port>@<bus port> <flags> ...`, flags like `myself,master` or `master,fail`.
      return text
        .split("\n")
        .map((line) => line.split(" "))
        .filter(([, , flags = ""]) => flags.split(",").includes("master") && !flags.includes("fail"))
        .map(([, address = ""]) => Number(/:(\d+)@/.exec(address)?.[1]));
    },
    async masterOf(key) {
      const slot = (await cli(alive()[0]!.port, "cluster", "keyslot", key)).trim();
      return ownerOfSlot(await cli(alive()[0]!.port, "cluster", "slots"), Number(slot));
    },
    async hasReplica(port) {
      const info = await cli(port, "info", "replication");
      return /slave\d+:.*state=online/.test(info);
    },
    async killMasterOf(key) {
      const port = await cluster.masterOf(key);
      const node = nodes.find((n) => n.port === port)!;
      const exited = new Promise((resolve) => node.process.once("exit", resolve));
      node.process.kill("SIGKILL");
      await exited;
      return port;
    },
    async waitHealthy(timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const states = await Promise.all(alive().map((n) => cli(n.port, "cluster", "info").catch(() => "")));
        if (states.every((s) => s.includes("cluster_state:ok"))) {
          const masters = await cluster.masters();
          const live = new Set(alive().map((n) => n.port));
          if (masters.length >= 3 && masters.every((p) => live.has(p))) return;
        }
        if (Date.now() > deadline) throw new Error(`cluster not healthy in ${timeoutMs} ms: ${states.join(" | ")}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      process.off("exit", killAll);
      await Promise.all(
        alive().map((n) => {
          const exited = new Promise((resolve) => n.process.once("exit", resolve));
          n.process.kill("SIGKILL");
          return exited;
        }),
      );
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await run("redis-cli", [
      ...auth,
      "--cluster",
      "create",
      ...cluster.seeds,
      "--cluster-replicas",
      "1",
      "--cluster-yes",
    ]);
    await cluster.waitHealthy();
    await waitReplicasInSync(cluster);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

/** Every replica has finished its first sync: before that, killing its master would lose the shard's data. */
async function waitReplicasInSync(cluster: LocalRedisCluster): Promise<void> {
  const deadline = Date.now() + 20_000;
  const masters = new Set(await cluster.masters());
  const replicas = cluster.nodes.filter((n) => !masters.has(n.port));
  for (;;) {
    const infos = await Promise.all(replicas.map((n) => cluster.cli(n.port, "info", "replication")));
    if (infos.every((i) => i.includes("master_link_status:up"))) return;
    if (Date.now() > deadline) throw new Error("replicas did not sync with their masters");
    await new Promise((r) => setTimeout(r, 100));
  }
}

function startNode(port: number, dir: string, nodeTimeoutMs: number, password?: string): Promise<ClusterNode> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        join(dir, `nodes-${port}.conf`),
        "--cluster-node-timeout",
        String(nodeTimeoutMs),
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        // The settings the README asks operators for: the push queue must not lose jobs to eviction.
        "--maxmemory-policy",
        "noeviction",
        // A replica takes over however long ago it last heard from its master.
        "--cluster-replica-validity-factor",
        "0",
        ...(password === undefined ? [] : ["--requirepass", password, "--masterauth", password]),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const timer = setTimeout(() => reject(new Error(`redis-server ${port} did not start`)), 10_000);
    child.stdout!.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("Ready to accept connections")) {
        clearTimeout(timer);
        resolve({ port, process: child });
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server ${port} exited with ${code}`));
    });
  });
}

/** The master port serving `slot` in CLUSTER SLOTS output (redis-cli's flat listing). */
function ownerOfSlot(text: string, slot: number): number {
  const lines = text.split("\n").map((l) => l.trim());
  // Each range prints: from, to, master ip, master port, master id, then replicas (ip, port, id each).
  for (let i = 0; i + 3 < lines.length; i++) {
    const from = Number(lines[i]);
    const to = Number(lines[i + 1]);
    if (!Number.isInteger(from) || !Number.isInteger(to) || lines[i + 2] !== "127.0.0.1") continue;
    if (from <= slot && slot <= to) return Number(lines[i + 3]);
  }
  throw new Error(`no master for slot ${slot} in:\n${text}`);
}
