// Presence wired for one gateway: the store (Redis across pods, or memory on one node), this pod's tracker, the
// local subscriptions fed by the store's change feed, and the `presence:subscribe` event.
import type { Logger } from "pino";
import { PresenceSubscribePayload } from "@chat-gateway/protocol/schemas";
import type { Db } from "../db/client.js";
import { AppError, badRequest, unavailable } from "../errors.js";
import type { EventRouter } from "../realtime/handlers.js";
import { withDeadline } from "../realtime/redis-deadline.js";
import type { RedisConnections } from "../realtime/redis.js";
import type { GatewaySocket } from "../realtime/socket-server.js";
import { MemoryPresenceStore, type PresenceStore, RedisPresenceStore } from "./store.js";
import { MAX_WATCHED_PER_SOCKET, PresenceSubscriptions } from "./subscriptions.js";
import { PresenceTracker } from "./tracker.js";
import { MemoryRevocations, RedisRevocations, type WatchRevocations } from "./revocations.js";
import { lapsedPairs, watchableUsers } from "./visibility.js";

export interface PresenceOptions {
  db: Db;
  /** Where `presence:subscribe` is served. */
  router: EventRouter;
  redis: RedisConnections | undefined;
  log: Logger;
  heartbeatMs: number;
  ttlMs: number;
  /** How long `presence:subscribe` waits for the store before answering `unavailable`. @default 5000 */
  readTimeoutMs?: number;
  /** Counts store failures (Redis away or too slow), by operation. */
  failures?: { inc(labels: { client: string; op: string }): void };
}

export interface Presence {
  /** Tracks the socket as online. */
  attach(socket: GatewaySocket): void;
  /** Forgets it (on disconnect): offline once the user's last socket is gone, its subscriptions dropped. */
  detach(socket: GatewaySocket): void;
  /**
   * `userId` may no longer see some of `others`, or be seen by them (a conversation left, a block): drops, on every
   * pod, the watches between them that are no longer allowed. Resolves once that is published: every pod reads it
   * before any presence change published later (one subscriber connection per pod, in Redis's publish order).
   * Never rejects; failures are logged.
   */
  recheck(userId: string, others: string[]): Promise<void>;
  /**
   * A user left or was removed from a conversation: on this pod, watches between that user and people they no longer
   * share any conversation with end (either way), so neither sees the other's presence any more.
   */
  revisit(userId: string): Promise<void>;
  stop(): void;
}

export async function createPresence(options: PresenceOptions): Promise<Presence> {
  const { db, redis, log, router } = options;
  const store: PresenceStore = redis
    ? new RedisPresenceStore(redis, redis.names.presence, options.ttlMs)
    : new MemoryPresenceStore();
  const subscriptions = new PresenceSubscriptions();
  await store.onChange((change) => subscriptions.deliver(change));
  const revocations: WatchRevocations = redis
    ? new RedisRevocations(redis, redis.names.presence)
    : new MemoryRevocations();
  await revocations.onRevoked((pairs) => subscriptions.unwatch(pairs));
  // Sweeping as often as heartbeating bounds a dead pod's ghost to TTL plus one heartbeat.
  const tracker = new PresenceTracker(
    store,
    log,
    { heartbeatMs: options.heartbeatMs, sweepMs: options.heartbeatMs },
    (op) => options.failures?.inc({ client: "pub", op }),
  );
  const readTimeoutMs = options.readTimeoutMs ?? 5_000;

  router.on("presence:subscribe", PresenceSubscribePayload, async (socket, { userIds }) => {
    const allowed = await watchableUsers(db, socket.data.userId, userIds);
    // Watch before reading, so a change between the two reaches the socket rather than falling in the gap.
    if (!subscriptions.watch(socket, allowed)) {
      throw badRequest(`at most ${MAX_WATCHED_PER_SOCKET} watched users per connection`);
    }
    if (socket.disconnected) subscriptions.forget(socket.id, socket.data.userId);
    // Redis away or too slow is the client's `unavailable` (retry later), not an internal error.
    const presence = await withDeadline(store.read(allowed), readTimeoutMs, "a presence read").catch((err: unknown) => {
      if (err instanceof AppError) throw err;
      options.failures?.inc({ client: "pub", op: "presence_read" });
      log.warn({ err: err instanceof Error ? err.message : String(err) }, "presence read failed");
      throw unavailable();
    });
    return { presence };
  });

  return {
    attach(socket) {
      tracker.connected({ userId: socket.data.userId, socketId: socket.id });
    },
    detach(socket) {
      tracker.disconnected(socket.id);
      subscriptions.forget(socket.id, socket.data.userId);
    },
    async revisit(userId) {
      const pairs = subscriptions.watchesInvolving(userId);
      if (pairs.length === 0) return;
      // Everyone userId watches or is watched by here, against one query: who still shares a conversation with them.
      const others = [...new Set(pairs.map((p) => (p.watched === userId ? p.watcher.data.userId : p.watched)))];
      const still = new Set(await watchableUsers(db, userId, others));
      for (const { watcher, watched } of pairs) {
        const other = watched === userId ? watcher.data.userId : watched;
        if (!still.has(other)) subscriptions.unwatchSocket(watcher.id, [watched]);
      }
    },
    recheck(userId, others) {
      // Redis away: the message is lost and those watches last until the sockets reconnect; logged and counted.
      return lapsedPairs(db, userId, others)
        .then((pairs) => revocations.publish(pairs))
        .catch((err: unknown) => {
          options.failures?.inc({ client: "pub", op: "presence_revoke" });
          log.warn({ err: err instanceof Error ? err.message : String(err) }, "could not recheck presence watches");
        });
    },
    stop() {
      tracker.stop();
    },
  };
}
