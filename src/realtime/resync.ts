// Live fan-out over Redis pub/sub is at-most-once: whatever was published while a pod's Redis link was broken is
// gone, and a socket that stays connected would not learn of it until its next message or reconnect. So whenever
// live traffic may have been lost, the sockets that may have missed something are told to `sync` (the SDK does):
//   - this pod's subscriber reconnected (Redis restarted, or closed it over client-output-buffer-limit pubsub), or
//     a subscription failed: this pod's sockets missed what other pods published;
//   - this pod's publisher reconnected: every other pod's sockets missed what this pod published;
//   - a publish of this pod failed (node-redis timed it out behind socket backpressure, or the link was down): the
//     sockets of the rooms it was for, on every pod, missed it (everyone when it was not for one room);
//   - this pod's event loop stalled: its sockets may have missed traffic meanwhile;
//   - a room's subscription was confirmed late (a Redis backlog): its sockets here, connected since the join that
//     asked for it, missed what other pods published to it meanwhile.
// Triggers within RESYNC_DELAY_MS are coalesced into one emit, which also lets resubscription and the other pods'
// reconnections settle first.
import type { Logger } from "pino";
import type { RedisConnections } from "./redis.js";
import type { GatewayServer } from "./socket-server.js";

/** Lets resubscription and the other pods' reconnections settle before asking clients to sync. */
export const RESYNC_DELAY_MS = 1_000;
/** Past this many rooms to resync, every socket is told instead (one emit on the shared channel either way). */
const MAX_TARGETED_ROOMS = 5_000;

export type ResyncReason =
  "sub_reconnect" | "pub_reconnect" | "publish_failed" | "subscribe_failed" | "event_loop_stall" | "subscribed_late";

interface Pending {
  reasons: Set<ResyncReason>;
  timer: NodeJS.Timeout | undefined;
}

export class LiveResync {
  private readonly local: Pending = { reasons: new Set(), timer: undefined };
  private readonly cluster: Pending & { rooms: Set<string>; everyone: boolean } = {
    reasons: new Set(),
    timer: undefined,
    rooms: new Set(),
    everyone: false,
  };

  constructor(
    private readonly io: GatewayServer,
    private readonly log: Logger,
    private readonly counter: { inc(labels: { reason: ResyncReason }): void },
    /** Whether publishing can work now; a cluster resync waits for the publisher's recovery otherwise. */
    private readonly canPublish: () => boolean = () => true,
  ) {}

  /** This pod's sockets may have missed traffic. */
  localSockets(reason: ResyncReason): void {
    this.local.reasons.add(reason);
    this.local.timer ??= setTimeout(() => this.flushLocal(), RESYNC_DELAY_MS).unref();
  }

  /** This pod's sockets in `room` may have missed traffic: told at once (the subscription is in place now). */
  localRoom(reason: ResyncReason, room: string): void {
    this.counter.inc({ reason });
    this.io.local.to(room).emit("sync:required");
  }

  /** Sockets on every pod may have missed what this pod published: those in `room`, or all when undefined. */
  everyPod(reason: ResyncReason, room?: string): void {
    const c = this.cluster;
    c.reasons.add(reason);
    if (room === undefined || c.rooms.size >= MAX_TARGETED_ROOMS) c.everyone = true;
    else c.rooms.add(room);
    c.timer ??= setTimeout(() => this.flushCluster(), RESYNC_DELAY_MS).unref();
  }

  private flushLocal(): void {
    const reasons = [...this.local.reasons];
    this.local.reasons.clear();
    this.local.timer = undefined;
    this.log.info({ reasons }, "asking this pod's sockets to sync");
    for (const reason of reasons) this.counter.inc({ reason });
    this.io.local.emit("sync:required");
  }

  private flushCluster(): void {
    const c = this.cluster;
    c.timer = undefined;
    // The emit itself is a publish: while the publisher is down it would only fail again. Its recovery calls
    // everyPod("pub_reconnect"), which flushes what is pending here.
    if (!this.canPublish()) return;
    const reasons = [...c.reasons];
    const rooms = [...c.rooms];
    const everyone = c.everyone;
    c.reasons.clear();
    c.rooms.clear();
    c.everyone = false;
    this.log.info({ reasons, rooms: everyone ? "all" : rooms.length }, "asking sockets on every pod to sync");
    for (const reason of reasons) this.counter.inc({ reason });
    // If this publish fails too, the adapter clients report it and a new resync is scheduled.
    if (everyone) this.io.emit("sync:required");
    else this.io.to(rooms).emit("sync:required");
  }
}

/** Resyncs after a Redis connection of this pod comes back from an outage. */
export function resyncAfterRedisOutage(redis: RedisConnections, resync: LiveResync): void {
  redis.onRecovered((client) => {
    if (client === "sub") resync.localSockets("sub_reconnect");
    else resync.everyPod("pub_reconnect");
  });
}
