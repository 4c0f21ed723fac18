// Watches that must end: a presence subscription is checked when it is made, so when two people stop being allowed
// to see each other (one left the last conversation they shared, or blocked the other) every pod drops the sockets'
// watches between them. One small message per change on a channel every pod reads, like presence changes.
import type { PresenceNames } from "../realtime/redis-names.js";
import type { PresenceRedis } from "./store.js";
import type { WatchPair } from "./visibility.js";

export type RevocationListener = (pairs: WatchPair[]) => void;

export interface WatchRevocations {
  /** Tells every pod (this one included) to drop these watches. */
  publish(pairs: WatchPair[]): Promise<void>;
  onRevoked(listener: RevocationListener): Promise<void>;
}

/** One node: straight to the listeners. */
export class MemoryRevocations implements WatchRevocations {
  private readonly listeners: RevocationListener[] = [];

  publish(pairs: WatchPair[]): Promise<void> {
    for (const listener of this.listeners) listener(pairs);
    return Promise.resolve();
  }

  onRevoked(listener: RevocationListener): Promise<void> {
    this.listeners.push(listener);
    return Promise.resolve();
  }
}

export class RedisRevocations implements WatchRevocations {
  constructor(
    private readonly redis: PresenceRedis,
    private readonly names: PresenceNames,
  ) {}

  async publish(pairs: WatchPair[]): Promise<void> {
    if (pairs.length === 0) return;
    const payload = JSON.stringify(pairs.map((p) => [p.watcherId, p.userId]));
    // Published from the node that publishes presence changes (the presence keys' slot on a cluster), so every pod
    // reads revocations and changes in one order.
    await this.redis.command(this.names.online, ["PUBLISH", this.names.revokeChannel, payload]);
  }

  async onRevoked(listener: RevocationListener): Promise<void> {
    await this.redis.subscribe(this.names.revokeChannel, (raw: string) => {
      const pairs = parsePairs(raw);
      if (pairs.length > 0) listener(pairs);
    });
  }
}

function parsePairs(raw: string): WatchPair[] {
  try {
    const value = JSON.parse(raw) as unknown;
    if (!Array.isArray(value)) return [];
    return value
      .filter((p): p is [string, string] => Array.isArray(p) && typeof p[0] === "string" && typeof p[1] === "string")
      .map(([watcherId, userId]) => ({ watcherId, userId }));
  } catch {
    return [];
  }
}
