// The operator's bridge to any other push service (APNs through their own relay, SMS, a pager): every notification
// is POSTed as JSON, signed so the receiver can tell it came from this gateway and is fresh.
//
// Signature: header `x-push-timestamp: <unix seconds>` and `x-push-signature: v1=<hex HMAC-SHA256(secret,
// "<timestamp>.<raw body>")>`. Receivers recompute it over the raw body, compare in constant time, and refuse
// timestamps more than a few minutes old (replays).
import { createHmac } from "node:crypto";
import { type DeliveryOutcome, settle, unreachable } from "./delivery-outcome.js";
import type { PushNotification, PushProvider, PushTarget } from "./types.js";

export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

export class WebhookProvider implements PushProvider {
  readonly name = "webhook";

  constructor(private readonly options: { url: string; secret: string }) {}

  async send(target: PushTarget, notification: PushNotification, collapseKey: string): Promise<DeliveryOutcome> {
    const body = JSON.stringify({ userId: target.userId, collapseKey, notification });
    const timestamp = Math.floor(Date.now() / 1000);
    let res: Response;
    try {
      res = await fetch(this.options.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-push-timestamp": String(timestamp),
          "x-push-signature": signWebhook(this.options.secret, timestamp, body),
        },
        body,
        signal: AbortSignal.timeout(10_000),
      });
      await res.arrayBuffer().catch(() => undefined);
    } catch (err) {
      throw unreachable("webhook", err);
    }
    return settle("webhook", { status: res.status }, "webhook");
  }
}
