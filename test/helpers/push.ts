// Shared by the push tests: the fake push services, a gateway cluster configured to use them (`startPushGateways`,
// with a Web Push subscription per user in one call), and small helpers to send, to look for the gateways' push
// decisions in their logs, and to count what each user received.
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import webpush from "web-push";
import { FakeFcm } from "../fixtures/push/fake-fcm.js";
import { type FakeSubscription, FakeWebPushService } from "../fixtures/push/fake-web-push.js";
import { selfSignedCertificate, type TlsIdentity } from "../fixtures/push/tls.js";
import { WebhookReceiver } from "../fixtures/push/webhook-receiver.js";
import type { AuthResult } from "@chat-gateway/protocol";
import { api, eventually } from "./clients.js";
import { type Cluster, type ClusterOptions, type GatewayProcess, startGateways } from "./gateways.js";

export interface PushServices {
  tls: TlsIdentity;
  vapid: { publicKey: string; privateKey: string };
  webPush: FakeWebPushService;
  /** A second Web Push service, for the one that goes down and comes back. */
  flakyWebPush: FakeWebPushService;
  fcm: FakeFcm;
  webhook: WebhookReceiver;
  /** Gateway environment pointing at all of the above. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startPushServices(options: { generatedVapid?: () => string } = {}): Promise<PushServices> {
  const tls = selfSignedCertificate();
  const vapid = webpush.generateVAPIDKeys();
  const publicKey = options.generatedVapid ?? (() => vapid.publicKey);
  const webPush = new FakeWebPushService(tls, publicKey);
  const flakyWebPush = new FakeWebPushService(tls, publicKey);
  const fcm = new FakeFcm();
  const webhook = new WebhookReceiver(randomBytes(32).toString("hex"));
  await Promise.all([webPush.start(), flakyWebPush.start(), fcm.start(), webhook.start()]);
  const env: Record<string, string> = {
    NODE_EXTRA_CA_CERTS: tls.certFile,
    PUSH_RETRY_BASE_MS: "300",
    PUSH_MAX_ATTEMPTS: "12",
    PUSH_QUEUE_PREFIX: `test-push-${randomBytes(4).toString("hex")}`,
    FCM_SERVICE_ACCOUNT: fcm.serviceAccountJson(),
    FCM_ENDPOINT: fcm.url,
    PUSH_WEBHOOK_URL: webhook.url,
    PUSH_WEBHOOK_SECRET: webhook.secret,
    // The fake Web Push services listen on 127.0.0.1: allowlisted by host and port, and private addresses allowed
    // (PUSH_ALLOW_PRIVATE_ENDPOINTS is for tests like these only).
    PUSH_ENDPOINT_ALLOWLIST: [webPush, flakyWebPush].map((s) => new URL(s.origin).host).join(","),
    PUSH_ALLOW_PRIVATE_ENDPOINTS: "on",
    ...(options.generatedVapid ? {} : { VAPID_PUBLIC_KEY: vapid.publicKey, VAPID_PRIVATE_KEY: vapid.privateKey }),
  };
  return {
    tls,
    vapid,
    webPush,
    flakyWebPush,
    fcm,
    webhook,
    env,
    stop: async () => {
      await Promise.all([webPush.stop(), flakyWebPush.stop(), fcm.stop(), webhook.stop()]);
      tls.remove();
    },
  };
}

export interface PushGateways {
  services: PushServices;
  cluster: Cluster;
  /** The first pod. */
  gateway: GatewayProcess;
  /**
   * A Web Push subscription for this user on the fake service (offline: no device acks anything), made through `url`
   * (a pod started later, say). @default the first pod
   */
  subscribeWebPush(user: AuthResult, url?: string): Promise<FakeSubscription>;
  /** The VAPID public key the gateways sign with ("" in embedded mode until the first subscription). */
  vapidPublicKey(): string;
  stop(): Promise<void>;
}

export interface PushGatewaysOptions {
  /** PUSH_GRACE_MS. */
  graceMs: number;
  /** @default 1 */
  pods?: number;
  /** @default one node on embedded PGlite with the in-process queue (`{ adapter: "memory", embedded: true }`) */
  cluster?: Omit<ClusterOptions, "env">;
  /** More gateway environment, on top of the fake services' and PUSH_GRACE_MS. */
  env?: Record<string, string>;
}

/**
 * The fake push services and gateways that use them. Embedded mode generates its VAPID keys into DATA_DIR, so the fake
 * Web Push service learns the public key from the gateway on the first subscription; with PostgreSQL they come from the
 * environment.
 */
export async function startPushGateways(options: PushGatewaysOptions): Promise<PushGateways> {
  const clusterOptions = options.cluster ?? { adapter: "memory", embedded: true };
  const embedded = clusterOptions.embedded === true;
  let vapidPublicKey = "";
  const services = await startPushServices(embedded ? { generatedVapid: () => vapidPublicKey } : {});
  let cluster: Cluster;
  try {
    cluster = await startGateways(options.pods ?? 1, {
      ...clusterOptions,
      env: { ...services.env, PUSH_GRACE_MS: String(options.graceMs), ...options.env },
    });
  } catch (err) {
    await services.stop();
    throw err;
  }
  const gateway = cluster.gateways[0]!;
  return {
    services,
    cluster,
    gateway,
    vapidPublicKey: () => (embedded ? vapidPublicKey : services.vapid.publicKey),
    async subscribeWebPush(user, url = gateway.url) {
      if (embedded && vapidPublicKey === "") {
        const key = await api<{ publicKey: string }>(url, "GET", "/v1/push/vapid-public-key", {
          token: user.accessToken,
        });
        assert.equal(key.status, 200);
        assert.equal(Buffer.from(key.body.publicKey, "base64url").length, 65, "an uncompressed P-256 point");
        vapidPublicKey = key.body.publicKey;
      }
      const web = services.webPush.subscribe();
      const res = await api(url, "POST", "/v1/push/subscriptions", {
        token: user.accessToken,
        body: { type: "webpush", endpoint: web.endpoint, keys: web.keys },
      });
      assert.equal(res.status, 201);
      return web;
    },
    async stop() {
      await cluster.cleanup();
      await services.stop();
    },
  };
}

export async function send(url: string, token: string, conversationId: string, content: string): Promise<number> {
  const res = await api<{ message: { seq: number } }>(url, "POST", `/v1/conversations/${conversationId}/messages`, {
    token,
    body: { clientMsgId: randomUUID(), content },
  });
  if (res.status !== 201) throw new Error(`send failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.message.seq;
}

interface LogEntry {
  msg?: string;
  userId?: string;
  conversationId?: string;
  reason?: string;
}

export function pushLogs(cluster: Cluster, msg: string, filter: Partial<LogEntry>): LogEntry[] {
  const found: LogEntry[] = [];
  for (const gateway of cluster.gateways) {
    for (const line of gateway.logs) {
      if (!line.startsWith("{") || !line.includes(msg)) continue;
      const entry = JSON.parse(line) as LogEntry;
      if (entry.msg !== msg) continue;
      if (Object.entries(filter).every(([k, v]) => entry[k as keyof LogEntry] === v)) found.push(entry);
    }
  }
  return found;
}

/** Waits until a gateway logged that it decided not to push, and why. */
export async function skipLogged(cluster: Cluster, userId: string, conversationId: string, reason: string) {
  await eventually(
    () => pushLogs(cluster, "push skipped", { userId, conversationId, reason }).length > 0,
    20_000,
    `push skipped (${reason})`,
  );
}

/**
 * Late duplicates would come after another grace period plus a retry: give them that chance before asserting that
 * nothing more arrived. This waits for quiet, it does not measure speed.
 */
export const settle = (graceMs: number) => new Promise((r) => setTimeout(r, graceMs + 1500));
