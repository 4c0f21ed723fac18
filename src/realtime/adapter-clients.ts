// The Redis clients handed to the Socket.IO adapter, guarded. Both adapters fire Redis commands without looking at
// the outcome, and node-redis does fail them while the connection stays up: a command that waited longer than its
// timeout to be written (socket backpressure under a burst, a slow or paused Redis) is rejected with a TimeoutError,
// and with disableOfflineQueue every command fails at once during a reconnect. Measured against the libraries:
//   - the classic adapter calls `pubClient.publish()` and the subscribe commands without a handler: a rejection is
//     an unhandledRejection, which kills the process;
//   - the sharded adapter (socket.io-adapter's ClusterAdapter) catches a failed publish and only writes it to
//     `debug`: the emit reached this pod's sockets and silently no other pod's;
//   - SSUBSCRIBE/SUBSCRIBE of a room that fails (the connection broke before Redis answered) is not remembered by
//     node-redis, so it is not resubscribed on reconnect: that room would never again hear the other pods.
// Here every such failure is counted, logged, and reported, so the caller can resync what was lost; a failed
// subscription is retried once the subscriber is ready again (unless the adapter unsubscribed meanwhile).

export interface AdapterClientHooks {
  /** A publish to `channel` failed: whoever listens on it may have missed the message. */
  publishFailed(channel: string, err: unknown): void;
  /** A subscription command failed (subscribe: this pod may miss the channel's traffic until it is retried). */
  subscribeFailed(command: string, channels: string[], err: unknown): void;
  /** A failed subscription was made again: what was published meanwhile was missed. */
  resubscribed(command: string, channels: string[]): void;
  /**
   * A subscription took longer than LATE_SUBSCRIBE_MS to be confirmed: the sockets it was made for (a room's first
   * socket on this pod joined when it was sent) were connected meanwhile, and what other pods published to that
   * room in between never reached them.
   */
  subscribedLate(command: string, channels: string[]): void;
  /** A pub/sub message reached this pod on `channel` (counted, so the fan-out each pod pays can be measured). */
  received?(channel: string): void;
}

import type { PublishBacklog } from "./publish-backlog.js";

const PUBLISH = new Set(["publish", "PUBLISH", "sPublish", "SPUBLISH"]);
// The subscription commands the adapters use, and the unsubscribe that cancels a pending retry of each.
const SUBSCRIBE: Record<string, string> = {
  subscribe: "unsubscribe",
  SUBSCRIBE: "UNSUBSCRIBE",
  pSubscribe: "pUnsubscribe",
  PSUBSCRIBE: "PUNSUBSCRIBE",
  sSubscribe: "sUnsubscribe",
  SSUBSCRIBE: "SUNSUBSCRIBE",
};
const UNSUBSCRIBE = new Set(Object.values(SUBSCRIBE));
const RETRY_CHECK_MS = 500;
/** Redis confirms a subscription within a few ms; later than this, a socket's first messages may have been missed. */
export const LATE_SUBSCRIBE_MS = 50;

type AnyFn = (...args: unknown[]) => unknown;
const channelsOf = (arg: unknown): string[] => (Array.isArray(arg) ? arg : [arg]).map(String);

/**
 * The publishing client for the adapter: a failed publish resolves (after being reported) instead of rejecting.
 * With a backlog, every publish is in it until Redis answers or it fails (the writer's admission reads its age).
 */
export function guardPublisher<C extends object>(client: C, hooks: AdapterClientHooks, backlog?: PublishBacklog): C {
  return guard(client, (name, original) => {
    if (!PUBLISH.has(name)) return undefined;
    return (...args: unknown[]) => {
      const inFlight = backlog?.begin();
      return Promise.resolve()
        .then(() => original(...args))
        .catch((err: unknown) => {
          hooks.publishFailed(String(args[0]), err);
          return 0;
        })
        .finally(() => inFlight?.settle());
    };
  });
}

/** The subscribing client for the adapter: failed subscriptions are reported and retried, never rejected. */
export function guardSubscriber<C extends { isOpen: boolean; isReady: boolean }>(
  client: C,
  hooks: AdapterClientHooks,
): C {
  // Failed subscriptions waiting for a retry, by command and channel; an unsubscribe of the channel cancels it.
  const retries = new Map<string, NodeJS.Timeout>();
  const key = (command: string, channels: string[]) => `${command}\n${channels.join("\n")}`;

  const run = (name: string, original: AnyFn, args: unknown[], retry: boolean): Promise<unknown> => {
    const started = performance.now();
    return Promise.resolve()
      .then(() => original(...args))
      .then(
        (value) => {
          if (retry) hooks.resubscribed(name, channelsOf(args[0]));
          else if (name in SUBSCRIBE && performance.now() - started > LATE_SUBSCRIBE_MS) {
            hooks.subscribedLate(name, channelsOf(args[0]));
          }
          return value;
        },
        (err: unknown) => {
          const channels = channelsOf(args[0]);
          hooks.subscribeFailed(name, channels, err);
          const k = key(name, channels);
          if (!(name in SUBSCRIBE) || retries.has(k)) return;
          const check = () => {
            if (!client.isOpen) return void retries.delete(k);
            if (!client.isReady) return void retries.set(k, setTimeout(check, RETRY_CHECK_MS).unref());
            retries.delete(k);
            void run(name, original, args, true);
          };
          retries.set(k, setTimeout(check, RETRY_CHECK_MS).unref());
        },
      );
  };

  // The adapters' listeners, wrapped to count what arrives; the same wrapper each time, so an unsubscribe naming a
  // listener still finds it.
  const counted = new WeakMap<AnyFn, AnyFn>();
  const countingListener = (listener: unknown): unknown => {
    const received = hooks.received;
    if (typeof listener !== "function" || received === undefined) return listener;
    let wrapped = counted.get(listener as AnyFn);
    if (wrapped === undefined) {
      wrapped = (...args: unknown[]) => {
        // node-redis calls (message, channel); a pattern listener's channel is the one that matched.
        received(String(args[1]));
        return (listener as AnyFn)(...args);
      };
      counted.set(listener as AnyFn, wrapped);
    }
    return wrapped;
  };
  const withCountingListener = (args: unknown[]) =>
    args.length > 1 ? [args[0], countingListener(args[1]), ...args.slice(2)] : args;

  return guard(client, (name, original) => {
    if (name in SUBSCRIBE) return (...args: unknown[]) => run(name, original, withCountingListener(args), false);
    if (!UNSUBSCRIBE.has(name)) return undefined;
    return (...args: unknown[]) => {
      const channels = channelsOf(args[0]);
      for (const [sub, unsub] of Object.entries(SUBSCRIBE)) {
        if (unsub !== name) continue;
        const k = key(sub, channels);
        clearTimeout(retries.get(k));
        retries.delete(k);
      }
      return run(name, original, withCountingListener(args), false);
    };
  });
}

/** A view of the client whose methods named by `wrap` are replaced; everything else is the client itself. */
function guard<C extends object>(client: C, wrap: (name: string, original: AnyFn) => AnyFn | undefined): C {
  const wrapped = new Map<string, AnyFn | undefined>();
  return new Proxy(client, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop);
      if (typeof prop !== "string" || typeof value !== "function") return value;
      if (!wrapped.has(prop)) {
        const original = (value as AnyFn).bind(target);
        wrapped.set(prop, wrap(prop, original) ?? original);
      }
      return wrapped.get(prop);
    },
  });
}
