// Redis connections for the cluster path, to one Redis (REDIS_URL) or to a Redis Cluster (REDIS_CLUSTER_NODES).
// node-redis rather than ioredis: measured here, it delivered 1.14-1.28x the messages through the adapter at a seventh
// of Redis's CPU, because it pipelines a tick's commands. Its cluster client routes each command by key slot, keeps a
// sharded pub/sub connection per master, and moves subscriptions when a replica takes over a failed master.
import { createClient, createCluster, type RedisClientType, type RedisClusterType } from "redis";
import type { Logger } from "pino";
import { parseClusterNodes } from "./cluster-nodes.js";
import { type RedisNames, redisNames } from "./redis-names.js";

/** A connection to one Redis, or a cluster client: both take the same commands, routed by key on a cluster. */
export type RedisClient = RedisClientType | RedisClusterType;

export interface RedisConnections {
  /** Commands and publishing (adapter pub side, rate limits, presence). */
  pub: RedisClient;
  /** Subscriptions only: a subscribed connection cannot run other commands. */
  sub: RedisClient;
  /** Whether these are Redis Cluster clients. */
  cluster: boolean;
  /** Every key and channel name, under REDIS_PREFIX. */
  names: RedisNames;
  /** Whether the server has sharded pub/sub (Redis 7+). */
  supportsSharded: boolean;
  /** Runs a raw command on `pub`, on the node owning `firstKey`'s slot when on a cluster. */
  command(firstKey: string, args: string[]): Promise<unknown>;
  /** Subscribes `sub` to a classic channel (on a cluster, published messages reach every node). */
  subscribe(channel: string, listener: (message: string) => void): Promise<void>;
  /**
   * Called when a connection is ready again after an outage (for the resync of live delivery). On a cluster: any
   * node connection of that client was lost and a node connection is ready again (the node back, or its replica
   * promoted and the slots moved to it).
   */
  onRecovered(listener: (client: "pub" | "sub") => void): void;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type RedisTarget = { url: string } | { clusterNodes: string[] };

export interface RedisOptions {
  /**
   * node-redis fails a command that has waited this long to be written (behind a reconnect or socket backpressure)
   * with a TimeoutError, even though the connection stays up: callers must handle that (see adapter-clients.ts).
   */
  commandTimeoutMs?: number;
  /** @default "chat" */
  prefix?: string;
  /**
   * On a cluster, how long after a node connection starts reconnecting the client asks the cluster for its topology
   * again (to find the replica promoted in a failed master's place); again as long as it keeps failing. @default 1000
   */
  topologyRefreshMs?: number;
}

const socketOptions = {
  connectTimeout: 5_000,
  // Keep retrying forever with a capped backoff: the pod stays up (unready) while Redis is away.
  reconnectStrategy: (retries: number) => Math.min(100 * 2 ** Math.min(retries, 5), 3_000),
};

export async function connectRedis(
  target: RedisTarget,
  log: Logger,
  options: RedisOptions = {},
): Promise<RedisConnections> {
  const names = redisNames(options.prefix ?? "chat");
  const recoveredListeners: ((client: "pub" | "sub") => void)[] = [];
  const recovered = (name: "pub" | "sub") => {
    for (const listener of recoveredListeners) listener(name);
  };
  const common = {
    name: "chat-gateway",
    // Fail commands at once while disconnected rather than queueing them unboundedly.
    disableOfflineQueue: true,
    commandOptions: { timeout: options.commandTimeoutMs ?? 5_000 },
  };
  const isCluster = "clusterNodes" in target;
  const make = (name: "pub" | "sub"): RedisClient =>
    isCluster
      ? clusterClient(target.clusterNodes, name, common, options.topologyRefreshMs ?? 1_000, log, recovered)
      : singleClient(target.url, name, common, log, recovered);
  const pub = make("pub");
  const sub = make("sub");
  await Promise.all([pub.connect(), sub.connect()]);
  const info = String(await sendCommand(pub, undefined, ["INFO", "server"]));
  const major = Number(/redis_version:(\d+)/.exec(info)?.[1] ?? 0);
  return {
    pub,
    sub,
    cluster: isCluster,
    names,
    supportsSharded: major >= 7,
    command: (firstKey, args) => sendCommand(pub, firstKey, args),
    subscribe: (channel, listener) =>
      "masters" in sub ? sub.subscribe(channel, listener) : sub.subscribe(channel, listener),
    onRecovered: (listener) => recoveredListeners.push(listener),
    ping: async () => {
      // On a cluster every master must answer: a master down means the users whose rooms hash to it are cut off.
      const clients = isCluster ? (pub as RedisClusterType).masters.map((m) => m.client) : [pub as RedisClientType];
      await withTimeout(
        Promise.all(
          clients.map((c) => {
            if (c === undefined) throw new Error("a cluster master has no connection");
            return c.ping();
          }),
        ),
        1_000,
      );
    },
    close: async () => {
      await Promise.allSettled([pub.close(), sub.close()]);
    },
  };
}

function sendCommand(client: RedisClient, firstKey: string | undefined, args: string[]): Promise<unknown> {
  if ("masters" in client) return client.sendCommand(firstKey, false, args);
  return client.sendCommand(args);
}

interface CommonOptions {
  name: string;
  disableOfflineQueue: boolean;
  commandOptions: { timeout: number };
}

function singleClient(
  url: string,
  name: "pub" | "sub",
  common: CommonOptions,
  log: Logger,
  recovered: (name: "pub" | "sub") => void,
): RedisClientType {
  const client = createClient({
    url,
    ...common,
    name: `${common.name}-${name}`,
    socket: socketOptions,
  }) as RedisClientType;
  let down = false;
  client.on("error", (err: Error) => {
    if (!down) log.warn({ err: err.message, client: name }, "redis connection error");
    down = true;
  });
  client.on("ready", () => {
    if (down) {
      log.info({ client: name }, "redis connection restored");
      recovered(name);
    }
    down = false;
  });
  return client;
}

function clusterClient(
  nodes: string[],
  name: "pub" | "sub",
  common: CommonOptions,
  topologyRefreshMs: number,
  log: Logger,
  recovered: (name: "pub" | "sub") => void,
): RedisClusterType {
  const seeds = parseClusterNodes(nodes);
  if (typeof seeds === "string") throw new Error(`REDIS_CLUSTER_NODES: ${seeds}`);
  const cluster = createCluster({
    rootNodes: seeds.nodes.map((node) => ({ socket: { host: node.host, port: node.port } })),
    defaults: {
      // Every node of the cluster, seeds and discovered ones, takes the same credentials.
      ...(seeds.username === undefined ? {} : { username: seeds.username }),
      ...(seeds.password === undefined ? {} : { password: seeds.password }),
      name: `${common.name}-${name}`,
      disableOfflineQueue: common.disableOfflineQueue,
      socket: socketOptions,
    },
    commandOptions: common.commandOptions,
    topologyRefreshOnReconnectionAttemptStrategy: topologyRefreshMs,
  }) as RedisClusterType;
  const down = new Set<string>();
  const address = (node: { host: string; port: number }) => `${node.host}:${node.port}`;
  cluster.on("error", (err: Error) => log.warn({ err: err.message, client: name }, "redis cluster error"));
  cluster.on("node-error", (err: Error, node: { host: string; port: number }) => {
    if (down.size === 0)
      log.warn({ err: err.message, client: name, node: address(node) }, "redis node connection error");
    down.add(address(node));
  });
  cluster.on("node-reconnecting", () => {
    // The single-Redis client's event, so chat_redis_reconnects_total counts node reconnects as well.
    cluster.emit("reconnecting");
  });
  cluster.on("node-ready", (node: { host: string; port: number }) => {
    if (down.size === 0) return;
    // A failed master does not come back: its replica's connection, made after the topology refresh, is the recovery.
    down.clear();
    log.info({ client: name, node: address(node) }, "redis cluster connection restored");
    recovered(name);
  });
  return cluster;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("redis ping timed out")), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
