// Rate limits, with rate-limiter-flexible: in Redis when the cluster has one (a user's sends are counted across
// every pod), in memory otherwise. If Redis stops answering, the in-memory insurance limiter takes over, so an outage
// degrades limits to per-pod instead of refusing every send. A Redis that is connected but slow (paused, blocked)
// would make every limited request wait for it, so a Redis check past its deadline falls back to that in-memory
// limiter as well.
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from "rate-limiter-flexible";
import { rateLimited } from "../errors.js";
import { RedisDeadlineError, withDeadline } from "../realtime/redis-deadline.js";
import type { RedisClient } from "../realtime/redis.js";

/** Where the limits are counted across pods: a Redis (or cluster) client, and each limit's key prefix. */
export interface RateLimitStore {
  client: RedisClient;
  /** @default `rl:<limit>` */
  keyPrefix?: (limit: string) => string;
}

export interface RateLimitSettings {
  enabled: boolean;
  sendPerSec: number;
  loginPerMin: number;
  /** Failed logins per account in LOGIN_FAILURE_WINDOW_S before its logins are refused. @default 10 */
  loginFailuresPerAccount?: number;
  /** Refreshes per login (refresh family) per minute. @default 10 */
  refreshPerMin?: number;
  /** Service calls per service key id per second. @default 50 */
  servicePerSec?: number;
  eventsPerSec: number;
  httpPerMin: number;
  /** Groups a user may create per minute. @default 30 */
  groupsPerMin?: number;
  /** Message searches per user per minute, across pods. @default 30 */
  searchPerMin?: number;
  /** Reports a user may file per hour. @default 20 */
  reportsPerHour?: number;
  /** How long a limit check may wait for Redis before the in-memory limiter decides instead. @default 5000 */
  redisTimeoutMs?: number;
  /** Called each time Redis did not answer a check in time and the in-memory limiter decided (for a counter). */
  onRedisTimeout?: () => void;
}

export interface RateLimiter {
  /** Throws `rate_limited` with retryAfterMs when `key` is over the limit. */
  consume(key: string): Promise<void>;
}

/**
 * Counts failures only: `attempt` reserves one (refused with `rate_limited` once the key is over), `succeeded` gives
 * it back. Reserving before the check, not counting after it, keeps a burst of parallel guesses from all passing.
 */
export interface FailureLimiter {
  attempt(key: string): Promise<void>;
  succeeded(key: string): Promise<void>;
}

/** The window failed logins are counted in: 15 minutes. */
export const LOGIN_FAILURE_WINDOW_S = 15 * 60;

const unlimited: RateLimiter = { consume: async () => {} };
const unlimitedFailures: FailureLimiter = { attempt: async () => {}, succeeded: async () => {} };

interface Limiter {
  main: RateLimiterAbstract;
  /** The in-memory limiter that decides when Redis does not answer in time. */
  memory?: RateLimiterAbstract;
}

function limiter(redis: RateLimitStore | undefined, keyPrefix: string, points: number, duration: number): Limiter {
  const memory = new RateLimiterMemory({ keyPrefix, points, duration });
  if (redis === undefined) return { main: memory };
  // Each check touches one key (a MULTI or script on it), so on a cluster it runs on that key's node.
  const main = new RateLimiterRedis({
    storeClient: redis.client,
    useRedisPackage: true,
    keyPrefix: redis.keyPrefix?.(keyPrefix) ?? `rl:${keyPrefix}`,
    points,
    duration,
    insuranceLimiter: memory,
  });
  return { main, memory };
}

function wrap({ main, memory }: Limiter, timeoutMs: number, onRedisTimeout: () => void): RateLimiter {
  return {
    consume: async (key) => {
      try {
        if (memory === undefined) await main.consume(key);
        else {
          await withDeadline(main.consume(key), timeoutMs, "a rate limit check").catch((err: unknown) => {
            if (!(err instanceof RedisDeadlineError)) throw err;
            onRedisTimeout();
            return memory.consume(key);
            throw err;
          });
        }
      } catch (err) {
        if (err instanceof RateLimiterRes) throw rateLimited(err.msBeforeNext);
        throw err;
      }
    },
  };
}

/** A check on Redis past its deadline is decided by the in-memory limiter instead. */
function guarded<T>(
  { main, memory }: Limiter,
  timeoutMs: number,
  onRedisTimeout: () => void,
  call: (l: RateLimiterAbstract) => Promise<T>,
): Promise<T> {
  if (memory === undefined) return call(main);
  return withDeadline(call(main), timeoutMs, "a rate limit check").catch((err: unknown) => {
    if (!(err instanceof RedisDeadlineError)) throw err;
    onRedisTimeout();
    return call(memory);
  });
}

function failures(l: Limiter, timeoutMs: number, onRedisTimeout: () => void): FailureLimiter {
  return {
    attempt: async (key) => {
      try {
        await guarded(l, timeoutMs, onRedisTimeout, (x) => x.consume(key));
      } catch (err) {
        if (err instanceof RateLimiterRes) throw rateLimited(err.msBeforeNext);
        throw err;
      }
    },
    succeeded: async (key) => {
      await guarded(l, timeoutMs, onRedisTimeout, (x) => x.reward(key, 1));
    },
  };
}

export interface RateLimiters {
  send: RateLimiter;
  /** Register and login per client IP (and refresh with an unknown token). */
  login: RateLimiter;
  /** Failed logins per lower-cased username. */
  loginFailures: FailureLimiter;
  /** Refresh per login (refresh family id). */
  refresh: RateLimiter;
  /** Service-token calls per key id. */
  service: RateLimiter;
  events: RateLimiter;
  http: RateLimiter;
  /** Group creation per user. */
  groups: RateLimiter;
  /** Message search per user. */
  search: RateLimiter;
  /** Reports filed per user. */
  reports: RateLimiter;
}

export function createRateLimiters(settings: RateLimitSettings, redis?: RateLimitStore): RateLimiters {
  if (!settings.enabled) {
    return {
      send: unlimited,
      login: unlimited,
      loginFailures: unlimitedFailures,
      refresh: unlimited,
      service: unlimited,
      events: unlimited,
      http: unlimited,
      groups: unlimited,
      search: unlimited,
      reports: unlimited,
    };
  }
  const timeoutMs = settings.redisTimeoutMs ?? 5_000;
  const onTimeout = settings.onRedisTimeout ?? (() => undefined);
  return {
    // Bursts of up to twice the steady rate over two seconds: people paste, then pause.
    send: wrap(limiter(redis, "send", settings.sendPerSec * 2, 2), timeoutMs, onTimeout),
    login: wrap(limiter(redis, "login", settings.loginPerMin, 60), timeoutMs, onTimeout),
    loginFailures: failures(
      limiter(redis, "loginfail", settings.loginFailuresPerAccount ?? 10, LOGIN_FAILURE_WINDOW_S),
      timeoutMs,
      onTimeout,
    ),
    refresh: wrap(limiter(redis, "refresh", settings.refreshPerMin ?? 10, 60), timeoutMs, onTimeout),
    service: wrap(limiter(redis, "service", settings.servicePerSec ?? 50, 1), timeoutMs, onTimeout),
    // Per socket, so local memory is right even in a cluster.
    events: wrap(limiter(undefined, "events", settings.eventsPerSec, 1), timeoutMs, onTimeout),
    http: wrap(limiter(redis, "http", settings.httpPerMin, 60), timeoutMs, onTimeout),
    groups: wrap(limiter(redis, "groups", settings.groupsPerMin ?? 30, 60), timeoutMs, onTimeout),
    // Each search reads an index and sorts its matches: far costlier than a send, so counted on its own.
    search: wrap(limiter(redis, "search", settings.searchPerMin ?? 30, 60), timeoutMs, onTimeout),
    reports: wrap(limiter(redis, "reports", settings.reportsPerHour ?? 20, 3600), timeoutMs, onTimeout),
  };
}
