// Rate limits, with rate-limiter-flexible: in Redis when the cluster has one (a user's sends are counted across
// every pod), in memory otherwise. If Redis stops answering, the in-memory insurance limiter takes over, so an outage
// degrades limits to per-pod instead of refusing every send.
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from "rate-limiter-flexible";
import type { RedisClientType } from "redis";
import { rateLimited } from "../errors.js";

export interface RateLimitSettings {
  enabled: boolean;
  sendPerSec: number;
  loginPerMin: number;
  eventsPerSec: number;
  httpPerMin: number;
}

export interface RateLimiter {
  /** Throws `rate_limited` with retryAfterMs when `key` is over the limit. */
  consume(key: string): Promise<void>;
}

const unlimited: RateLimiter = { consume: async () => {} };

function limiter(
  redis: RedisClientType | undefined,
  keyPrefix: string,
  points: number,
  duration: number,
): RateLimiterAbstract {
  const memory = new RateLimiterMemory({ keyPrefix, points, duration });
  if (redis === undefined) return memory;
  return new RateLimiterRedis({
    storeClient: redis,
    useRedisPackage: true,
    keyPrefix: `rl:${keyPrefix}`,
    points,
    duration,
    insuranceLimiter: memory,
  });
}

function wrap(l: RateLimiterAbstract): RateLimiter {
  return {
    consume: async (key) => {
      try {
        await l.consume(key);
      } catch (err) {
        if (err instanceof RateLimiterRes) throw rateLimited(err.msBeforeNext);
        throw err;
      }
    },
  };
}

export interface RateLimiters {
  send: RateLimiter;
  login: RateLimiter;
  events: RateLimiter;
  http: RateLimiter;
}

export function createRateLimiters(settings: RateLimitSettings, redis?: RedisClientType): RateLimiters {
  if (!settings.enabled) return { send: unlimited, login: unlimited, events: unlimited, http: unlimited };
  return {
    // Bursts of up to twice the steady rate over two seconds: people paste, then pause.
    send: wrap(limiter(redis, "send", settings.sendPerSec * 2, 2)),
    login: wrap(limiter(redis, "login", settings.loginPerMin, 60)),
    // Per socket, so local memory is right even in a cluster.
    events: wrap(limiter(undefined, "events", settings.eventsPerSec, 1)),
    http: wrap(limiter(redis, "http", settings.httpPerMin, 60)),
  };
}
