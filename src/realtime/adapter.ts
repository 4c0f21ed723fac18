// The Socket.IO adapter: how an emit to `user:<id>` reaches the pods where that user's sockets are.
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import type { Logger } from "pino";
import type { Namespace } from "socket.io";
import type { Adapter } from "socket.io-adapter";
import { type AdapterClientHooks, guardPublisher, guardSubscriber } from "./adapter-clients.js";
import type { PublishBacklog } from "./publish-backlog.js";
import type { RedisConnections } from "./redis.js";
import type { LiveResync } from "./resync.js";

export type AdapterMode = "memory" | "classic" | "sharded";

// The adapters' channel names (src/realtime/redis-names.ts): `<prefix>#/#` is the channel every pod reads,
// `<prefix>#/#<room>#` a one-room emit.

export interface AdapterFailureDeps {
  resync: LiveResync;
  log: Logger;
  failures: { inc(labels: { client: string; op: string }): void };
  /** Adapter pub/sub messages this pod received, by channel kind (`shared`, `room`, `other`). */
  received?: { inc(labels: { channel: string }): void };
  /** Where the adapter's publishes wait for Redis (the writer refuses sends while the oldest is too old). */
  backlog?: PublishBacklog;
}

/**
 * Sharded mode uses Redis 7 sharded pub/sub with one channel per room ("dynamic"), so a pod only receives the
 * traffic of rooms it has sockets in. Emits must then name one room each: an emit to several rooms, or one with an
 * ack, falls back to the shared channel every pod reads (see realtime/notifier.ts).
 */
/** The adapter a gateway with this Redis runs: the one asked for, else sharded where the server has it. */
export function adapterModeFor(redis: RedisConnections, requested: "classic" | "sharded" | undefined): AdapterMode {
  const mode: AdapterMode = requested ?? (redis.supportsSharded ? "sharded" : "classic");
  if (mode === "sharded" && !redis.supportsSharded) throw new Error("REDIS_ADAPTER=sharded needs Redis 7 or later");
  // The classic adapter's PUBLISH reaches every node of a cluster over the cluster bus, and its request/response
  // PSUBSCRIBE ties every pod to one node: it would work, slowly, and lose everything that node's failover drops.
  if (mode === "classic" && redis.cluster) throw new Error("a Redis Cluster needs the sharded adapter (Redis 7+)");
  return mode;
}

export function createRedisAdapter(
  redis: RedisConnections,
  requested: "classic" | "sharded" | undefined,
  deps: AdapterFailureDeps,
): { mode: AdapterMode; adapter: (nsp: Namespace) => Adapter } {
  const mode = adapterModeFor(redis, requested);
  const { classicAdapterKey, shardedChannelPrefix } = redis.names;
  const hooks = failureHooks(`${mode === "sharded" ? shardedChannelPrefix : classicAdapterKey}#/#`, deps);
  const pub = guardPublisher(redis.pub, hooks, deps.backlog);
  const sub = guardSubscriber(redis.sub, hooks);
  if (mode === "sharded") {
    const options = { subscriptionMode: "dynamic" as const, channelPrefix: shardedChannelPrefix };
    return { mode, adapter: createShardedAdapter(pub, sub, options) };
  }
  return { mode, adapter: createAdapter(pub, sub, { key: classicAdapterKey }) };
}

/**
 * Whose sockets may have missed a publish that failed on `channel`: the room of a one-room emit, "everyone" for the
 * channel every pod reads (multi-room emits and io.emit go there), or "nobody" for a channel that carries no socket
 * traffic (the adapters' request and response channels: their callers time out and handle it).
 */
export function missedBy(roomPrefix: string, channel: string): string | "everyone" | "nobody" {
  if (channel === roomPrefix) return "everyone";
  if (!channel.startsWith(roomPrefix) || !channel.endsWith("#")) return "nobody";
  const room = channel.slice(roomPrefix.length, -1);
  return room.startsWith("user:") ? room : "nobody";
}

/** The kind of an adapter channel, for the received-messages counter: a fixed set, never the room's name. */
export function channelKind(roomPrefix: string, channel: string): "shared" | "room" | "other" {
  const who = missedBy(roomPrefix, channel);
  return who === "everyone" ? "shared" : who === "nobody" ? "other" : "room";
}

function failureHooks(roomPrefix: string, { resync, log, failures, received }: AdapterFailureDeps): AdapterClientHooks {
  // One warning per burst: a stalled link fails thousands of publishes in a row; the counter has them all.
  let lastWarn = 0;
  const warn = (err: unknown, fields: Record<string, unknown>, msg: string) => {
    if (Date.now() - lastWarn < 1_000) return;
    lastWarn = Date.now();
    // node-redis errors keep the name "Error": their class says what happened (TimeoutError, ClientOfflineError).
    const error = err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err);
    log.warn({ ...fields, err: error }, msg);
  };
  return {
    ...(received === undefined
      ? {}
      : { received: (channel: string) => received.inc({ channel: channelKind(roomPrefix, channel) }) }),
    publishFailed(channel, err) {
      failures.inc({ client: "pub", op: "publish" });
      warn(err, {}, "redis publish failed: resyncing the sockets it was for");
      const who = missedBy(roomPrefix, channel);
      if (who !== "nobody") resync.everyPod("publish_failed", who === "everyone" ? undefined : who);
    },
    subscribeFailed(command, channels, err) {
      failures.inc({ client: "sub", op: command.toLowerCase() });
      warn(err, { command, channels: channels.length }, "redis subscription command failed");
    },
    resubscribed() {
      resync.localSockets("subscribe_failed");
    },
    subscribedLate(_command, channels) {
      for (const channel of channels) {
        const who = missedBy(roomPrefix, channel);
        if (who !== "nobody" && who !== "everyone") resync.localRoom("subscribed_late", who);
      }
    },
  };
}
