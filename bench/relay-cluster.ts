// Starts bench/relay.ts processes on the local Redis, like bench/cluster.ts starts gateways.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { transformSync } from "esbuild";
import { REDIS_URL } from "../test/helpers/gateways.js";
import { hasExited, spawnReady, type BenchGateway } from "./cluster.js";

/**
 * The relay as plain JavaScript (dist/bench/relay.mjs, its imports resolve from the project's node_modules), so it
 * runs without tsx's loader, as the compiled gateway does: tsx's own memory would otherwise count against the relay.
 */
function compiledRelay(): string {
  const out = "dist/bench/relay.mjs";
  mkdirSync("dist/bench", { recursive: true });
  const { code } = transformSync(readFileSync("bench/relay.ts", "utf8"), { loader: "ts", format: "esm" });
  writeFileSync(out, code);
  return out;
}

export interface RelayCluster {
  relays: BenchGateway[];
  /** Tells every relay process (the extra ones too) these conversations' members. */
  addConversations(conversations: { id: string; memberIds: string[] }[]): Promise<void>;
  /** One more relay; `options.env` adds to the environment, `options.nodeArgs` go before the script. */
  startExtra(options?: { env?: Record<string, string>; nodeArgs?: string[] }): Promise<BenchGateway>;
  cleanup(): Promise<void>;
}

export async function startRelayCluster(count: number, runId: string): Promise<RelayCluster> {
  const env = { REDIS_URL, RELAY_RUN: runId, NODE_ENV: "production" };
  const args = [compiledRelay()];
  const relays = await Promise.all(Array.from({ length: count }, () => spawnReady(args, env)));
  const all = [...relays];
  const known: { id: string; memberIds: string[] }[] = [];
  const tell = async (g: BenchGateway, conversations: typeof known) => {
    const res = await fetch(`${g.url}/conversations`, { method: "POST", body: JSON.stringify(conversations) });
    if (res.status !== 204) throw new Error(`relay ${g.url} answered ${res.status}`);
  };
  return {
    relays,
    addConversations: async (conversations) => {
      known.push(...conversations);
      await Promise.all(all.map((g) => tell(g, conversations)));
    },
    startExtra: async (options = {}) => {
      const g = await spawnReady([...(options.nodeArgs ?? []), ...args], { ...env, ...options.env });
      all.push(g);
      await tell(g, known);
      return g;
    },
    cleanup: async () => {
      await Promise.all(
        all.map(
          (g) =>
            new Promise<void>((resolve) => {
              if (hasExited(g)) return resolve();
              g.process.once("exit", () => resolve());
              g.process.kill("SIGTERM");
              setTimeout(() => g.process.kill("SIGKILL"), 3_000).unref();
            }),
        ),
      );
    },
  };
}
