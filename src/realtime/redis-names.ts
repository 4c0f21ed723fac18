// Every Redis key and channel the gateway uses, derived from one prefix (REDIS_PREFIX), so several deployments (or
// test files) can share one Redis without hearing each other's traffic or counting each other's limits.
//
// Keys a Lua script touches together carry a hash tag (`{...}`): on a Redis Cluster only keys of one slot may meet in
// a script, and a tag makes Redis hash just the tagged part. The tags are there on a single Redis too, so the names do
// not change when a deployment moves to a cluster. Adapter channels carry no tag: on a cluster each user room's
// channel hashes to its own slot, which is what spreads sharded pub/sub over the shards.
//
// Names that already carried a deployment prefix before REDIS_PREFIX existed keep their value with the default prefix
// `chat` (the classic adapter's `chat-gateway`, the push queue's `chat-push`), so old and new pods still share them
// during a rolling upgrade; see the README's "Redis namespace" for the ones that moved.

/** What REDIS_PREFIX may be: no `:`, `#`, `{` or `}`, which the names below use as separators and tags. */
export const REDIS_PREFIX_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

export interface RedisNames {
  prefix: string;
  /** The classic adapter's `key`: channels `<key>#/#`, `<key>-request#/#`, ... */
  classicAdapterKey: string;
  /** The sharded adapter's `channelPrefix`: `<prefix>#/#` (every pod), `<prefix>#/#user:<id>#` (one room). */
  shardedChannelPrefix: string;
  presence: PresenceNames;
  /** rate-limiter-flexible keyPrefix of one limit; its keys are `<keyPrefix>:<key>`. */
  rateLimit(limit: string): string;
}

export interface PresenceNames {
  /** Where presence changes are published (PUBLISH from the scripts; on a cluster, relayed to every node). */
  channel: string;
  /** Where watch revocations are published (presence/revocations.ts), from the presence slot's node as well. */
  revokeChannel: string;
  online: string;
  sockets(userId: string): string;
  lastSeen(userId: string): string;
}

export function redisNames(prefix: string): RedisNames {
  const presenceTag = `{${prefix}:presence}`;
  return {
    prefix,
    classicAdapterKey: `${prefix}-gateway`,
    shardedChannelPrefix: `${prefix}-gateway`,
    presence: {
      channel: `${prefix}:presence`,
      revokeChannel: `${prefix}:presence:revoke`,
      online: `${presenceTag}:online`,
      sockets: (userId) => `${presenceTag}:sockets:${userId}`,
      lastSeen: (userId) => `${presenceTag}:last-seen:${userId}`,
    },
    rateLimit: (limit) => `${prefix}:rl:${limit}`,
  };
}

/** BullMQ's default `prefix` for the push queue; hash-tagged on a cluster, where BullMQ's scripts touch many of the
 * queue's keys at once and so need them all in one slot. */
export function defaultPushQueuePrefix(prefix: string, cluster: boolean): string {
  return cluster ? `{${prefix}-push}` : `${prefix}-push`;
}

/** Whether a BullMQ prefix keeps all of a queue's keys in one cluster slot: it holds a non-empty `{tag}`. */
export function hasHashTag(name: string): boolean {
  return /^[^{]*\{[^}]+\}/.test(name);
}
