// Emitting to a user's live devices from another backend process, through the gateways' Redis, without going
// through a gateway. Use it for ephemeral signals (a "your export is ready" toast, a badge refresh): nothing is
// stored, nothing is replayed by `sync`, and a user with no connected device never sees it. For anything the user
// must not miss, post a message with a service token instead (POST /v1/conversations/:id/messages).
//
//   REDIS_URL=redis://127.0.0.1:6379 REDIS_ADAPTER=classic \
//     node --import tsx examples/emit-from-another-service.ts <userId> <event> '<json payload>'
//
// REDIS_ADAPTER must match the gateways':
// - classic: @socket.io/redis-emitter publishes on the adapter's pub/sub channel (key "chat-gateway").
// - sharded: the emitter speaks classic PUBLISH only, which sharded gateways never read. This file then SPUBLISHes
//   the adapter's own BROADCAST message (socket.io-adapter's ClusterAdapter format, JSON-encoded) on the room's
//   dynamic channel `socket.io#/#user:<id>#`, which is exactly what a gateway would publish for `io.to(room).emit`.
import { randomBytes } from "node:crypto";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";

/** Must equal the `key` in src/realtime/adapter.ts for the classic adapter. */
export const CLASSIC_ADAPTER_KEY = "chat-gateway";

// socket.io-adapter's MessageType.BROADCAST and socket.io-parser's PacketType.EVENT.
const BROADCAST = 3;
const EVENT = 2;

export interface EmitToUserOptions {
  redisUrl: string;
  adapter: "classic" | "sharded";
}

/** Sends `event` with `payload` to every connected device of `userId`, on whichever pod it is. */
export async function emitToUser(
  options: EmitToUserOptions,
  userId: string,
  event: string,
  payload: unknown,
): Promise<void> {
  const redis = createClient({ url: options.redisUrl });
  await redis.connect();
  try {
    const room = `user:${userId}`;
    if (options.adapter === "classic") {
      new Emitter(redis, { key: CLASSIC_ADAPTER_KEY }).to(room).emit(event, payload);
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
      await redis.sPublish(`socket.io#/#${room}#`, JSON.stringify(message));
    }
  } finally {
    // quit() flushes the emitter's PUBLISH before closing.
    await redis.quit();
  }
}

async function main(): Promise<void> {
  const [userId, event, json] = process.argv.slice(2);
  if (!userId || !event) {
    console.error("usage: emit-from-another-service.ts <userId> <event> [json payload]");
    process.exit(2);
  }
  const adapter = process.env.REDIS_ADAPTER === "sharded" ? "sharded" : "classic";
  await emitToUser(
    { redisUrl: process.env.REDIS_URL ?? "redis://127.0.0.1:6379", adapter },
    userId,
    event,
    json ? (JSON.parse(json) as unknown) : {},
  );
  process.stdout.write(`${JSON.stringify({ emitted: event, to: `user:${userId}`, adapter })}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
