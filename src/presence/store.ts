// Where presence lives: which devices of a user are live, whether the user is announced online, and lastSeenAt.
// Every transition is decided in one place that serialises it (a Lua script in Redis, the event loop in memory), and
// the change is published from there too, so subscribers see a user's online/offline events in transition order
// whichever pods caused them.
import type { PresenceState } from "@chat-gateway/protocol";
import type { PresenceNames } from "../realtime/redis-names.js";
import type { RedisConnections } from "../realtime/redis.js";

export type PresenceChange = { userId: string } & PresenceState;
export type PresenceChangeListener = (change: PresenceChange) => void;

export interface LiveSocket {
  userId: string;
  socketId: string;
}

export interface PresenceStore {
  /** Registers (or refreshes) live sockets; a user who was offline is announced online. */
  touch(sockets: LiveSocket[]): Promise<void>;
  /** A socket went away; the user is announced offline when it was their last live one. */
  remove(socket: LiveSocket): Promise<void>;
  /** Announces offline the users whose every socket lapsed (their pod died); a no-op in memory. */
  sweep(): Promise<void>;
  read(userIds: string[]): Promise<Record<string, PresenceState>>;
  /** Every change, from every pod. */
  onChange(listener: PresenceChangeListener): Promise<void>;
}

/** One node: no pod can die without taking every socket with it, so nothing expires. */
export class MemoryPresenceStore implements PresenceStore {
  private readonly sockets = new Map<string, Set<string>>();
  private readonly lastSeen = new Map<string, string>();
  private readonly listeners: PresenceChangeListener[] = [];

  touch(sockets: LiveSocket[]): Promise<void> {
    const now = new Date().toISOString();
    for (const { userId, socketId } of sockets) {
      let live = this.sockets.get(userId);
      const wasOnline = live !== undefined;
      if (live === undefined) this.sockets.set(userId, (live = new Set()));
      live.add(socketId);
      this.lastSeen.set(userId, now);
      if (!wasOnline) this.announce({ userId, online: true, lastSeenAt: now });
    }
    return Promise.resolve();
  }

  remove({ userId, socketId }: LiveSocket): Promise<void> {
    const live = this.sockets.get(userId);
    if (live?.delete(socketId) && live.size === 0) {
      this.sockets.delete(userId);
      const now = new Date().toISOString();
      this.lastSeen.set(userId, now);
      this.announce({ userId, online: false, lastSeenAt: now });
    }
    return Promise.resolve();
  }

  sweep(): Promise<void> {
    return Promise.resolve();
  }

  read(userIds: string[]): Promise<Record<string, PresenceState>> {
    const states: Record<string, PresenceState> = {};
    for (const id of userIds) states[id] = { online: this.sockets.has(id), lastSeenAt: this.lastSeen.get(id) ?? null };
    return Promise.resolve(states);
  }

  onChange(listener: PresenceChangeListener): Promise<void> {
    this.listeners.push(listener);
    return Promise.resolve();
  }

  private announce(change: PresenceChange): void {
    for (const listener of this.listeners) listener(change);
  }
}

/** lastSeenAt outlives the session by this much; after that a user reads as never seen. */
const LAST_SEEN_KEEP_MS = 90 * 86_400_000;

// Keys (names in realtime/redis-names.ts, all under one hash tag so a script may touch them together on a cluster):
// `online` is a sorted set userId -> the latest expiry of any of the user's sockets; membership is what
// has been announced (online while present). `sockets:<userId>` is socketId -> expiry, refreshed by the
// heartbeat of the pod holding the socket. Announcements happen only where membership of presence:online changes,
// inside a script, which is what keeps many tabs from flapping and lets only one surviving pod announce a lapse.

// KEYS: online, then (sockets, lastSeen) per entry. ARGV: expiry, nowIso, channel, keepMs, lastSeenKeepMs, then
// (userId, socketId) per entry.
const TOUCH = `
local expiry, iso, channel, keep, seenKeep = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
for i = 2, #KEYS, 2 do
  local user, socket = ARGV[4 + i], ARGV[5 + i]
  redis.call('ZADD', KEYS[i], expiry, socket)
  redis.call('PEXPIRE', KEYS[i], keep)
  redis.call('SET', KEYS[i + 1], iso, 'PX', seenKeep)
  local announced = redis.call('ZSCORE', KEYS[1], user)
  redis.call('ZADD', KEYS[1], 'GT', expiry, user)
  if not announced then
    redis.call('PUBLISH', channel, cjson.encode({userId = user, online = true, lastSeenAt = iso}))
  end
end
return 0`;

// KEYS: online, sockets, lastSeen. ARGV: userId, socketId, nowMs, nowIso, channel, lastSeenKeepMs.
const REMOVE = `
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if #top > 0 then
  redis.call('ZADD', KEYS[1], top[2], ARGV[1])
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[6])
redis.call('PUBLISH', ARGV[5], cjson.encode({userId = ARGV[1], online = false, lastSeenAt = ARGV[4]}))
return 1`;

// KEYS: online, sockets, lastSeen. ARGV: userId, nowMs, nowIso, channel. lastSeenAt of a lapsed user is its last
// heartbeat, the last moment anything proved a device alive.
const SWEEP = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if #top > 0 then
  redis.call('ZADD', KEYS[1], top[2], ARGV[1])
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
local seen = redis.call('GET', KEYS[3]) or ARGV[3]
redis.call('PUBLISH', ARGV[4], cjson.encode({userId = ARGV[1], online = false, lastSeenAt = seen}))
return 1`;

/** What the store needs of Redis: raw commands routed by their first key, and a subscription. */
export type PresenceRedis = Pick<RedisConnections, "command" | "subscribe">;

/**
 * Scripts are called by hash and loaded again when Redis has forgotten them (after a restart, or on a replica that
 * took over a cluster slot). SCRIPT LOAD goes to the node owning the first key, where the EVALSHA runs.
 */
class Script {
  private sha: string | undefined;
  constructor(private readonly source: string) {}

  async run(redis: PresenceRedis, keys: string[], args: string[]): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args];
    const firstKey = keys[0]!;
    if (this.sha !== undefined) {
      try {
        return await redis.command(firstKey, ["EVALSHA", this.sha, ...tail]);
      } catch (err) {
        if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
      }
    }
    this.sha = String(await redis.command(firstKey, ["SCRIPT", "LOAD", this.source]));
    return redis.command(firstKey, ["EVALSHA", this.sha, ...tail]);
  }
}

const TOUCH_BATCH = 200;
const SWEEP_BATCH = 200;
/** Bounds one sweep call (200,000 users); whatever is left goes on the next heartbeat. */
const SWEEP_MAX_BATCHES = 1000;

export class RedisPresenceStore implements PresenceStore {
  private readonly touchScript = new Script(TOUCH);
  private readonly removeScript = new Script(REMOVE);
  private readonly sweepScript = new Script(SWEEP);

  constructor(
    private readonly redis: PresenceRedis,
    private readonly names: PresenceNames,
    private readonly ttlMs: number,
  ) {}

  async touch(sockets: LiveSocket[]): Promise<void> {
    const now = Date.now();
    const common = [
      String(now + this.ttlMs),
      new Date(now).toISOString(),
      this.names.channel,
      String(2 * this.ttlMs),
      String(LAST_SEEN_KEEP_MS),
    ];
    const batches: Promise<unknown>[] = [];
    // All batches are written in this tick, so a later `remove` of one of these sockets runs after them.
    for (let i = 0; i < sockets.length; i += TOUCH_BATCH) {
      const batch = sockets.slice(i, i + TOUCH_BATCH);
      const n = this.names;
      const keys = [n.online, ...batch.flatMap((s) => [n.sockets(s.userId), n.lastSeen(s.userId)])];
      const args = [...common, ...batch.flatMap((s) => [s.userId, s.socketId])];
      batches.push(this.touchScript.run(this.redis, keys, args));
    }
    await Promise.all(batches);
  }

  async remove({ userId, socketId }: LiveSocket): Promise<void> {
    const now = Date.now();
    const n = this.names;
    await this.removeScript.run(
      this.redis,
      [n.online, n.sockets(userId), n.lastSeen(userId)],
      [userId, socketId, String(now), new Date(now).toISOString(), n.channel, String(LAST_SEEN_KEEP_MS)],
    );
  }

  /**
   * Sweeps until no lapsed user is left, SWEEP_BATCH at a time (one round trip of scripts per batch, so Redis is never
   * blocked for long), at most SWEEP_MAX_BATCHES batches per call. Each script takes its user out of the lapsed range
   * (announced offline, or rescored to a live socket's expiry), so every batch makes progress. Before, one batch per
   * sweep meant a dead pod with 10,000 users took 50 heartbeats to announce them all.
   */
  async sweep(): Promise<void> {
    const now = Date.now();
    const iso = new Date(now).toISOString();
    const n = this.names;
    for (let batch = 0; batch < SWEEP_MAX_BATCHES; batch++) {
      const lapsed = (await this.redis.command(n.online, [
        "ZRANGEBYSCORE",
        n.online,
        "-inf",
        String(now),
        "LIMIT",
        "0",
        String(SWEEP_BATCH),
      ])) as string[];
      await Promise.all(
        lapsed.map((userId) =>
          this.sweepScript.run(
            this.redis,
            [n.online, n.sockets(userId), n.lastSeen(userId)],
            [userId, String(now), iso, n.channel],
          ),
        ),
      );
      if (lapsed.length < SWEEP_BATCH) return;
    }
  }

  async read(userIds: string[]): Promise<Record<string, PresenceState>> {
    if (userIds.length === 0) return {};
    const now = Date.now();
    const n = this.names;
    // One slot (the hash tag), so the MGET of many users' keys is allowed on a cluster too.
    const [scores, seen] = (await Promise.all([
      this.redis.command(n.online, ["ZMSCORE", n.online, ...userIds]),
      this.redis.command(n.online, ["MGET", ...userIds.map(n.lastSeen)]),
    ])) as [(string | null)[], (string | null)[]];
    const states: Record<string, PresenceState> = {};
    userIds.forEach((id, i) => {
      const score = scores[i];
      states[id] = { online: score != null && Number(score) > now, lastSeenAt: seen[i] ?? null };
    });
    return states;
  }

  async onChange(listener: PresenceChangeListener): Promise<void> {
    await this.redis.subscribe(this.names.channel, (raw: string) => {
      const change = parseChange(raw);
      if (change !== undefined) listener(change);
    });
  }
}

function parseChange(raw: string): PresenceChange | undefined {
  try {
    const value = JSON.parse(raw) as Partial<PresenceChange>;
    if (typeof value.userId !== "string" || typeof value.online !== "boolean") return undefined;
    return {
      userId: value.userId,
      online: value.online,
      lastSeenAt: typeof value.lastSeenAt === "string" ? value.lastSeenAt : null,
    };
  } catch {
    return undefined;
  }
}
