// The Socket.IO adapter: how an emit to `user:<id>` reaches the pods where that user's sockets are.
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import type { Namespace } from "socket.io";
import type { Adapter } from "socket.io-adapter";
import type { RedisConnections } from "./redis.js";

export type AdapterMode = "memory" | "classic" | "sharded";

/**
 * Sharded mode uses Redis 7 sharded pub/sub with one channel per room ("dynamic"), so a pod only receives the
 * traffic of rooms it has sockets in. Emits must then name one room each: an emit to several rooms, or one with an
 * ack, falls back to the shared channel every pod reads (see realtime/notifier.ts).
 */
export function createRedisAdapter(
  redis: RedisConnections,
  requested: "classic" | "sharded" | undefined,
): { mode: AdapterMode; adapter: (nsp: Namespace) => Adapter } {
  const mode: AdapterMode = requested ?? (redis.supportsSharded ? "sharded" : "classic");
  if (mode === "sharded") {
    if (!redis.supportsSharded) throw new Error("REDIS_ADAPTER=sharded needs Redis 7 or later");
    return { mode, adapter: createShardedAdapter(redis.pub, redis.sub, { subscriptionMode: "dynamic" }) };
  }
  return { mode, adapter: createAdapter(redis.pub, redis.sub, { key: "chat-gateway" }) };
}
