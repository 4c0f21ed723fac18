// This pod's share of presence: the sockets it holds, registered on connect, refreshed by a heartbeat so they stay
// live in the store, removed on disconnect; and a periodic sweep that announces the users whose devices all lapsed
// because their pod died. Store failures (Redis away) are logged and healed by the next heartbeat, which
// re-registers every local socket.
import type { Logger } from "pino";
import type { LiveSocket, PresenceStore } from "./store.js";

export interface TrackerTiming {
  heartbeatMs: number;
  sweepMs: number;
}

export class PresenceTracker {
  private readonly local = new Map<string, LiveSocket>();
  private readonly timers: NodeJS.Timeout[] = [];
  /** A sweep of many lapsed users may outlast the interval: the next one waits for it rather than overlapping. */
  private sweeping = false;

  constructor(
    private readonly store: PresenceStore,
    private readonly log: Logger,
    timing: TrackerTiming,
    /** Counts a failed store operation (presence_connect, presence_heartbeat, ...). */
    private readonly countFailure: (op: string) => void = () => undefined,
  ) {
    this.timers.push(setInterval(() => this.heartbeat(), timing.heartbeatMs).unref());
    this.timers.push(setInterval(() => this.sweep(), timing.sweepMs).unref());
  }

  connected(socket: LiveSocket): void {
    this.local.set(socket.socketId, socket);
    this.store.touch([socket]).catch((err: unknown) => this.warn(err, "presence connect"));
  }

  disconnected(socketId: string): void {
    const socket = this.local.get(socketId);
    if (socket === undefined) return;
    this.local.delete(socketId);
    this.store.remove(socket).catch((err: unknown) => this.warn(err, "presence disconnect"));
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
  }

  private heartbeat(): void {
    if (this.local.size === 0) return;
    this.store.touch([...this.local.values()]).catch((err: unknown) => this.warn(err, "presence heartbeat"));
  }

  private sweep(): void {
    if (this.sweeping) return;
    this.sweeping = true;
    this.store
      .sweep()
      .catch((err: unknown) => this.warn(err, "presence sweep"))
      .finally(() => {
        this.sweeping = false;
      });
  }

  private warn(err: unknown, what: string): void {
    this.countFailure(what.replace(" ", "_"));
    this.log.warn({ err: err instanceof Error ? err.message : String(err) }, `${what} failed`);
  }
}
