// createPush builds the push side from the configuration: the providers that are configured, the queue (BullMQ
// with Redis, in-process without), and the subscription store. With no provider configured it still answers the
// routes, and schedules nothing.
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { type Config, redisTarget } from "../config.js";
import type { Db } from "../db/client.js";
import type { Message } from "@chat-gateway/protocol";
import { ApnsProvider } from "./apns-provider.js";
import { FcmProvider } from "./fcm-provider.js";
import { PushMetrics } from "./push-metrics.js";
import { PushService } from "./push-service.js";
import { EndpointPolicy } from "./endpoint-policy.js";
import { reactionJobFor } from "./reaction-push.js";
import { BullPushQueue, InProcessPushQueue, type PushQueue } from "./queue.js";
import { PushSubscriptions } from "./subscriptions.js";
import type { PushProvider } from "./types.js";
import { embeddedVapidKeys, type VapidKeys, WebPushProvider } from "./web-push-provider.js";
import { WebhookProvider } from "./webhook-provider.js";

export interface Push {
  subscriptions: PushSubscriptions;
  /** The VAPID public key browsers subscribe with; undefined when Web Push is not configured. */
  vapidPublicKey: string | undefined;
  /** messages.onStored listener: schedules the decisions; never throws, never blocks the send. */
  onStored(message: Message, members: { userId: string; muted: boolean }[]): void;
  /** MessageChanges listener for reactions: with PUSH_ON_REACTION=on, schedules the author's reaction push. */
  onReacted(message: Message, actorId: string | null, reaction: { emoji: string; on: boolean }): void;
  close(): Promise<void>;
}

export function createPush(deps: { db: Db; log: Logger; registry: Registry }, config: Readonly<Config>): Push {
  const log = deps.log.child({ component: "push" });
  const vapid: VapidKeys | undefined =
    config.VAPID_PUBLIC_KEY !== undefined && config.VAPID_PRIVATE_KEY !== undefined
      ? { publicKey: config.VAPID_PUBLIC_KEY, privateKey: config.VAPID_PRIVATE_KEY }
      : config.embedded
        ? embeddedVapidKeys(config.DATA_DIR)
        : undefined;
  const policy = new EndpointPolicy(config.PUSH_ENDPOINT_ALLOWLIST, config.PUSH_ALLOW_PRIVATE_ENDPOINTS);
  if (config.PUSH_ALLOW_PRIVATE_ENDPOINTS) {
    log.warn("PUSH_ALLOW_PRIVATE_ENDPOINTS is on: Web Push endpoints may be private addresses (tests only)");
  }
  const providers: { webpush?: PushProvider; fcm?: PushProvider; apns?: PushProvider } = {};
  if (vapid) {
    providers.webpush = new WebPushProvider({
      ...vapid,
      policy,
      subject: config.VAPID_SUBJECT,
      ttlSeconds: config.PUSH_TTL_SECONDS,
    });
  }
  if (config.FCM_SERVICE_ACCOUNT !== undefined) {
    providers.fcm = new FcmProvider({
      serviceAccountJson: config.FCM_SERVICE_ACCOUNT,
      endpoint: config.FCM_ENDPOINT,
      tokenUrl: config.FCM_TOKEN_URL,
      ttlSeconds: config.PUSH_TTL_SECONDS,
      appleStyle: config.PUSH_IOS_STYLE,
    });
  }
  if (config.APNS_KEY && config.APNS_KEY_ID && config.APNS_TEAM_ID && config.APNS_TOPIC) {
    providers.apns = new ApnsProvider({
      keyPem: config.APNS_KEY,
      keyId: config.APNS_KEY_ID,
      teamId: config.APNS_TEAM_ID,
      topic: config.APNS_TOPIC,
      endpoint: config.APNS_ENDPOINT,
      ttlSeconds: config.PUSH_TTL_SECONDS,
      style: config.PUSH_IOS_STYLE,
    });
  }
  const webhook =
    config.PUSH_WEBHOOK_URL !== undefined && config.PUSH_WEBHOOK_SECRET !== undefined
      ? new WebhookProvider({ url: config.PUSH_WEBHOOK_URL, secret: config.PUSH_WEBHOOK_SECRET })
      : undefined;

  const subscriptions = new PushSubscriptions(
    deps.db,
    {
      webpush: vapid !== undefined,
      fcm: providers.fcm !== undefined,
      apns: providers.apns !== undefined,
    },
    { policy, maxPerUser: config.PUSH_MAX_SUBSCRIPTIONS_PER_USER },
  );
  const enabled = Object.keys(providers).length > 0 || webhook !== undefined;
  if (!enabled) {
    return {
      subscriptions,
      vapidPublicKey: undefined,
      onStored: () => undefined,
      onReacted: () => undefined,
      close: async () => undefined,
    };
  }

  const service = new PushService({
    db: deps.db,
    log,
    metrics: new PushMetrics(deps.registry),
    providers,
    webhook,
    includeContent: config.PUSH_INCLUDE_CONTENT,
  });
  const retry = { attempts: config.PUSH_MAX_ATTEMPTS, baseDelayMs: config.PUSH_RETRY_BASE_MS };
  const redis = redisTarget(config);
  const queue: PushQueue =
    redis !== undefined
      ? new BullPushQueue(service, {
          redis,
          prefix: config.PUSH_QUEUE_PREFIX,
          graceMs: config.PUSH_GRACE_MS,
          lockMs: config.PUSH_JOB_LOCK_MS,
          retry,
          log,
        })
      : new InProcessPushQueue(service, { graceMs: config.PUSH_GRACE_MS, retry, log });
  log.info(
    {
      providers: [...Object.keys(providers), ...(webhook ? ["webhook"] : [])],
      queue: redis ? "bullmq" : "in-process",
    },
    "push enabled",
  );

  return {
    subscriptions,
    vapidPublicKey: vapid?.publicKey,
    onStored(message, members) {
      for (const job of service.jobsFor(message, members)) {
        queue
          .schedule(job)
          .catch((err: unknown) => log.warn({ err, conversationId: job.conversationId }, "could not schedule push"));
      }
    },
    onReacted(message, actorId, reaction) {
      if (!config.PUSH_ON_REACTION) return;
      const job = reactionJobFor(message, actorId, reaction);
      if (job === undefined) return;
      queue
        .scheduleReaction(job)
        .catch((err: unknown) =>
          log.warn({ err, conversationId: job.conversationId }, "could not schedule reaction push"),
        );
    },
    close: () => queue.close(),
  };
}
