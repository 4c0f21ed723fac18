// Emitting to a user's live devices from another backend process, through the gateways' Redis, without going
// through a gateway. Use it for ephemeral signals (a "your export is ready" toast, a badge refresh): nothing is
// stored, nothing is replayed by `sync`, and a user with no connected device never sees it. For anything the user
// must not miss, post a message with a service token instead (POST /v1/conversations/:id/messages).
//
//   REDIS_URL=redis://127.0.0.1:6379 REDIS_ADAPTER=classic REDIS_PREFIX=chat \
//     node --import tsx examples/emit-from-another-service.ts <userId> <event> '<json payload>'
//
// REDIS_PREFIX (default `chat`) and REDIS_ADAPTER must match the gateways'; on a Redis Cluster set
// REDIS_CLUSTER_NODES (host:port,...) instead of REDIS_URL, with the sharded adapter.
// - classic: @socket.io/redis-emitter publishes on the adapter's pub/sub channel (key "<prefix>-gateway").
// - sharded: the emitter speaks classic PUBLISH only, which sharded gateways never read. This file then SPUBLISHes
//   the adapter's own BROADCAST message (socket.io-adapter's ClusterAdapter format, JSON-encoded) on the room's
//   dynamic channel `<prefix>-gateway#/#user:<id>#`, which is exactly what a gateway would publish for
//   `io.to(room).emit`. On a cluster the channel's slot decides the node, as for the gateways.
import { randomBytes } from "node:crypto";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient, createCluster } from "redis";
import { parseClusterNodes } from "../src/realtime/cluster-nodes.js";
import { redisNames } from "../src/realtime/redis-names.js";

/** node-redis cluster options for REDIS_CLUSTER_NODES entries (`host:port` or `redis://:password@host:port`). */
function clusterOptions(entries: string[]) {
  const seeds = parseClusterNodes(entries);
  if (typeof seeds === "string") throw new Error(`REDIS_CLUSTER_NODES: ${seeds}`);
  const { nodes, ...credentials } = seeds;
  return { rootNodes: nodes.map((socket) => ({ socket })), defaults: credentials };
}

// socket.io-adapter's MessageType.BROADCAST and socket.io-parser's PacketType.EVENT.
const BROADCAST = 3;
const EVENT = 2;

export interface EmitToUserOptions {
  /** One Redis, or a cluster's seed nodes (`host:port`, sharded adapter only). */
  redis: { url: string } | { clusterNodes: string[] };
  adapter: "classic" | "sharded";
  /** The gateways' REDIS_PREFIX. @default "chat" */
  prefix?: string;
}

/** Sends `event` with `payload` to every connected device of `userId`, on whichever pod it is. */
export async function emitToUser(
  options: EmitToUserOptions,
  userId: string,
  event: string,
  payload: unknown,
): Promise<void> {
  const names = redisNames(options.prefix ?? "chat");
  const target = options.redis;
  const redis =
    "url" in target ? createClient({ url: target.url }) : createCluster(clusterOptions(target.clusterNodes));
  await redis.connect();
  try {
    const room = `user:${userId}`;
    if (options.adapter === "classic") {
      if (!("url" in target)) throw new Error("the classic adapter does not run on a Redis Cluster");
      new Emitter(redis, { key: names.classicAdapterKey }).to(room).emit(event, payload);
    } else {
      const message = {
        // Any id other than a gateway's: gateways ignore messages carrying their own uid.
        uid: `emitter-${randomBytes(6).toString("hex")}`,
        nsp: "/",
        type: BROADCAST,
        data: {
          packet: { type: EVENT, nsp: "/", data: [event, payload] },
          opts: { rooms: [room], except: [], flags: {} },
        },
      };
      await redis.sPublish(`${names.shardedChannelPrefix}#/#${room}#`, JSON.stringify(message));
    }
  } finally {
    // close() flushes the emitter's PUBLISH before closing.
    await redis.close();
  }
}

async function main(): Promise<void> {
  const [userId, event, json] = process.argv.slice(2);
  if (!userId || !event) {
    console.error("usage: emit-from-another-service.ts <userId> <event> [json payload]");
    process.exit(2);
  }
  const nodes = (process.env.REDIS_CLUSTER_NODES ?? "").split(",").filter(Boolean);
  const adapter = process.env.REDIS_ADAPTER === "sharded" || nodes.length > 0 ? "sharded" : "classic";
  const redis = nodes.length > 0 ? { clusterNodes: nodes } : { url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379" };
  await emitToUser(
    { redis, adapter, prefix: process.env.REDIS_PREFIX || "chat" },
    userId,
    event,
    json ? (JSON.parse(json) as unknown) : {},
  );
  process.stdout.write(`${JSON.stringify({ emitted: event, to: `user:${userId}`, adapter })}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
