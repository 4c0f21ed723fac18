// Web Push (RFC 8030) with VAPID (RFC 8292) through the `web-push` package: aes128gcm payload encryption, the
// VAPID JWT, and the Topic header so a newer notification for the same conversation replaces an undelivered one.
import { createECDH } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensurePrivateDir } from "../db/private-dir.js";
import { lazyModule } from "../lifecycle/lazy-module.js";
import { EndpointRefused, type EndpointPolicy } from "./endpoint-policy.js";
import { type DeliveryOutcome, settle, TransientPushError, unreachable } from "./delivery-outcome.js";
import type { PushNotification, PushProvider, PushTarget } from "./types.js";

export interface VapidKeys {
  publicKey: string;
  privateKey: string;
}

export interface WebPushOptions extends VapidKeys {
  subject: string;
  ttlSeconds: number;
  /** Which endpoints may be sent to; checked again on every delivery (the subscription may predate the policy). */
  policy?: EndpointPolicy | undefined;
}

// Loaded at the first notification sent, so a pod that has Web Push configured but sends nothing yet stays light.
const webPush = lazyModule(async () => (await import("web-push")).default);

export class WebPushProvider implements PushProvider {
  readonly name = "webpush";

  constructor(private readonly options: WebPushOptions) {}

  async send(target: PushTarget, notification: PushNotification, collapseKey: string): Promise<DeliveryOutcome> {
    if (target.p256dh === null || target.auth === null) return { kind: "rejected", status: 0 };
    const policy = this.options.policy;
    try {
      await policy?.check(target.endpoint);
    } catch (err) {
      if (!(err instanceof EndpointRefused)) throw err;
      if (err.temporary) throw new TransientPushError(`web push endpoint: ${err.message}`);
      return { kind: "rejected", status: 0 };
    }
    const webpush = await webPush();
    try {
      const res = await webpush.sendNotification(
        { endpoint: target.endpoint, keys: { p256dh: target.p256dh, auth: target.auth } },
        JSON.stringify(notification),
        {
          vapidDetails: {
            subject: this.options.subject,
            publicKey: this.options.publicKey,
            privateKey: this.options.privateKey,
          },
          TTL: this.options.ttlSeconds,
          // Topic allows at most 32 URL-safe characters: a UUID without its dashes is exactly that.
          topic: collapseKey.replace(/-/g, "").slice(0, 32),
          urgency: "high",
          timeout: 10_000,
          // Its lookup refuses private addresses at connect time, so a name re-pointed after the check is refused.
          ...(policy?.agent ? { agent: policy.agent } : {}),
        },
      );
      return settle("webpush", { status: res.statusCode }, "web push service");
    } catch (err) {
      if (err instanceof webpush.WebPushError) return settle("webpush", { status: err.statusCode }, "web push service");
      if (err instanceof TransientPushError) throw err;
      if ((err as NodeJS.ErrnoException).code === "EPUSHPRIVATE") return { kind: "rejected", status: 0 };
      // Network errors (refused, reset, timeout, TLS): the service may come back.
      throw unreachable("web push", err);
    }
  }
}

/**
 * Embedded mode only: VAPID keys generated once and kept in DATA_DIR beside the database, so browser
 * subscriptions (which are bound to the public key) survive a restart.
 */
export function embeddedVapidKeys(dataDir: string): VapidKeys {
  const file = join(dataDir, "vapid-keys.json");
  try {
    const parsed = JSON.parse(readFileSync(file, "utf8")) as Partial<VapidKeys>;
    if (typeof parsed.publicKey === "string" && typeof parsed.privateKey === "string") {
      return { publicKey: parsed.publicKey, privateKey: parsed.privateKey };
    }
  } catch {
    // absent or unreadable: generate below
  }
  ensurePrivateDir(dataDir);
  // What web-push's generateVAPIDKeys makes, without loading it: a P-256 key pair, the public key as an uncompressed
  // point and the private key as 32 bytes, both base64url.
  const ecdh = createECDH("prime256v1");
  ecdh.generateKeys();
  const privateKey = ecdh.getPrivateKey();
  const keys: VapidKeys = {
    publicKey: ecdh.getPublicKey().toString("base64url"),
    privateKey: Buffer.concat([Buffer.alloc(32 - privateKey.length), privateKey]).toString("base64url"),
  };
  writeFileSync(file, JSON.stringify(keys), { mode: 0o600 });
  return keys;
}
