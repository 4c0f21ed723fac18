// Live fan-out over Redis pub/sub is at-most-once: whatever was published while a pod's Redis connection was down is
// gone, and a socket that stays connected would not learn of it until its next message or reconnect. So when a
// connection comes back, the sockets that may have missed something are told to `sync`:
//   - this pod's subscriber was down: its own sockets missed what other pods published;
//   - this pod's publisher was down: every other pod's sockets missed what this pod published.
import type { Logger } from "pino";
import type { RedisConnections } from "./redis.js";
import type { GatewayServer } from "./socket-server.js";

/** Lets resubscription and the other pods' reconnections settle before asking clients to sync. */
export const RESYNC_DELAY_MS = 1_000;

export function resyncAfterRedisOutage(io: GatewayServer, redis: RedisConnections, log: Logger): void {
  redis.onRecovered((client) => {
    setTimeout(() => {
      log.info({ client }, "asking sockets to sync after a redis outage");
      if (client === "sub") io.local.emit("sync:required");
      else io.emit("sync:required");
    }, RESYNC_DELAY_MS).unref();
  });
}
