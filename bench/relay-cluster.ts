// Starts bench/relay.ts processes on the local Redis, like bench/cluster.ts starts gateways.
import { REDIS_URL } from "../test/helpers/gateways.js";
import { hasExited, spawnReady, type BenchGateway } from "./cluster.js";

export interface RelayCluster {
  relays: BenchGateway[];
  /** Tells every relay process (the extra ones too) these conversations' members. */
  addConversations(conversations: { id: string; memberIds: string[] }[]): Promise<void>;
  startExtra(): Promise<BenchGateway>;
  cleanup(): Promise<void>;
}

export async function startRelayCluster(count: number, runId: string): Promise<RelayCluster> {
  const env = { REDIS_URL, RELAY_RUN: runId, NODE_ENV: "production" };
  const args = ["--import", "tsx", "bench/relay.ts"];
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
    startExtra: async () => {
      const g = await spawnReady(args, env);
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

export async function relayMemory(url: string): Promise<{ rss: number; heapUsed: number }> {
  return (await (await fetch(`${url}/memory`)).json()) as { rss: number; heapUsed: number };
}
