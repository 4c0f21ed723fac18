// Redis connections for the cluster path. node-redis rather than ioredis: measured here, it delivered 1.14-1.28x
// the messages through the adapter at a seventh of Redis's CPU, because it pipelines a tick's commands.
import { createClient, type RedisClientType } from "redis";
import type { Logger } from "pino";

export interface RedisConnections {
  /** Commands and publishing (adapter pub side, rate limits, presence). */
  pub: RedisClientType;
  /** Subscriptions only: a subscribed connection cannot run other commands. */
  sub: RedisClientType;
  /** Whether the server has sharded pub/sub (Redis 7+). */
  supportsSharded: boolean;
  /** Called when a connection is ready again after an outage (for the resync of live delivery). */
  onRecovered(listener: (client: "pub" | "sub") => void): void;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface RedisOptions {
  /**
   * node-redis fails a command that has waited this long to be written (behind a reconnect or socket backpressure)
   * with a TimeoutError, even though the connection stays up: callers must handle that (see adapter-clients.ts).
   */
  commandTimeoutMs?: number;
}

export async function connectRedis(url: string, log: Logger, options: RedisOptions = {}): Promise<RedisConnections> {
  const recoveredListeners: ((client: "pub" | "sub") => void)[] = [];
  const make = (name: "pub" | "sub") => {
    const client = createClient({
      url,
      name: `chat-gateway-${name}`,
      socket: {
        connectTimeout: 5_000,
        // Keep retrying forever with a capped backoff: the pod stays up (unready) while Redis is away.
        reconnectStrategy: (retries: number) => Math.min(100 * 2 ** Math.min(retries, 5), 3_000),
      },
      // Fail commands at once while disconnected rather than queueing them unboundedly.
      disableOfflineQueue: true,
      commandOptions: { timeout: options.commandTimeoutMs ?? 5_000 },
    }) as RedisClientType;
    let down = false;
    client.on("error", (err: Error) => {
      if (!down) log.warn({ err: err.message, client: name }, "redis connection error");
      down = true;
    });
    client.on("ready", () => {
      if (down) {
        log.info({ client: name }, "redis connection restored");
        for (const listener of recoveredListeners) listener(name);
      }
      down = false;
    });
    return client;
  };
  const pub = make("pub");
  const sub = make("sub");
  await Promise.all([pub.connect(), sub.connect()]);
  const info = await pub.info("server");
  const major = Number(/redis_version:(\d+)/.exec(info)?.[1] ?? 0);
  return {
    pub,
    sub,
    supportsSharded: major >= 7,
    onRecovered: (listener) => recoveredListeners.push(listener),
    ping: async () => {
      await withTimeout(pub.ping(), 1_000);
    },
    close: async () => {
      await Promise.allSettled([pub.quit(), sub.quit()]);
    },
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("redis ping timed out")), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
