// Apple Push Notification service, directly: HTTP/2 (node:http2, one session reused and re-opened when it closes),
// token-based authentication (an ES256 JWT signed with the team's .p8 key, `kid` = key id, `iss` = team id, renewed
// every 50 minutes: Apple refuses one older than an hour and throttles renewing more often than every 20 minutes).
// 410, or 400 BadDeviceToken, means the app is gone from that device: the subscription is deleted.
import { connect, type ClientHttp2Session, constants } from "node:http2";
import { createPrivateKey, type KeyObject } from "node:crypto";
import jwt from "jsonwebtoken";
import { applePush, type ApplePushStyle } from "./apple.js";
import { type DeliveryOutcome, settle, TransientPushError } from "./delivery-outcome.js";
import type { PushNotification, PushProvider, PushTarget } from "./types.js";

export interface ApnsOptions {
  /** The .p8 key's PEM text (APNS_KEY). */
  keyPem: string;
  keyId: string;
  teamId: string;
  /** The app's bundle id (APNS_TOPIC). */
  topic: string;
  /** https://api.push.apple.com, or https://api.sandbox.push.apple.com for development builds. */
  endpoint: string;
  ttlSeconds: number;
  style: ApplePushStyle;
}

const TOKEN_RENEW_MS = 50 * 60_000;
const REQUEST_TIMEOUT_MS = 10_000;

/** Throws at start-up when the key is not a usable EC P-256 private key, never printing it. */
export function parseApnsKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem.replace(/\\n/g, "\n"));
  } catch {
    throw new Error("APNS_KEY: not a PEM private key (the .p8 file's content)");
  }
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw new Error("APNS_KEY: must be the EC P-256 key of an APNs auth key (.p8)");
  }
  return key;
}

export class ApnsProvider implements PushProvider {
  readonly name = "apns";
  private readonly key: KeyObject;
  private token: { value: string; issuedAt: number } | undefined;
  private session: ClientHttp2Session | undefined;

  constructor(private readonly options: ApnsOptions) {
    this.key = parseApnsKey(options.keyPem);
  }

  async send(target: PushTarget, notification: PushNotification, collapseKey: string): Promise<DeliveryOutcome> {
    const push = applePush(notification, this.options.style);
    const { status, reason } = await this.request(
      target.endpoint,
      {
        "apns-topic": this.options.topic,
        "apns-collapse-id": collapseKey.slice(0, 64),
        "apns-expiration": String(Math.floor(Date.now() / 1000) + this.options.ttlSeconds),
        ...push.headers,
      },
      JSON.stringify(push.payload),
    );
    return settle(
      "apns",
      { status, reasons: reason === undefined ? [] : [reason] },
      `APNs (${reason ?? "no reason"})`,
      () => (this.token = undefined),
    );
  }

  close(): void {
    this.session?.close();
    this.session = undefined;
  }

  private providerToken(): string {
    const now = Date.now();
    if (this.token && now - this.token.issuedAt < TOKEN_RENEW_MS) return this.token.value;
    const value = jwt.sign({ iss: this.options.teamId, iat: Math.floor(now / 1000) }, this.key, {
      algorithm: "ES256",
      keyid: this.options.keyId,
    });
    this.token = { value, issuedAt: now };
    return value;
  }

  private connection(): ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const session = connect(this.options.endpoint);
    // A broken session is replaced on the next send; its error must not escape as an uncaught exception.
    session.on("error", () => session.destroy());
    session.on("close", () => {
      if (this.session === session) this.session = undefined;
    });
    session.unref();
    this.session = session;
    return session;
  }

  private request(
    deviceToken: string,
    headers: Record<string, string>,
    body: string,
  ): Promise<{ status: number; reason: string | undefined }> {
    return new Promise((resolve, reject) => {
      let stream;
      try {
        stream = this.connection().request({
          [constants.HTTP2_HEADER_METHOD]: "POST",
          [constants.HTTP2_HEADER_PATH]: `/3/device/${encodeURIComponent(deviceToken)}`,
          authorization: `bearer ${this.providerToken()}`,
          "content-type": "application/json",
          ...headers,
        });
      } catch (err) {
        reject(new TransientPushError(`APNs connection failed: ${(err as Error).message}`));
        return;
      }
      let status = 0;
      let text = "";
      stream.setTimeout(REQUEST_TIMEOUT_MS, () => stream.close(constants.NGHTTP2_CANCEL));
      stream.on("response", (h) => (status = Number(h[constants.HTTP2_HEADER_STATUS])));
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => (text += chunk.slice(0, 4096)));
      stream.on("error", (err) => reject(new TransientPushError(`APNs request failed: ${err.message}`)));
      stream.on("close", () => {
        if (status === 0) return reject(new TransientPushError("APNs request ended without an answer"));
        let reason: string | undefined;
        try {
          reason = (JSON.parse(text) as { reason?: string }).reason;
        } catch {
          reason = undefined;
        }
        resolve({ status, reason });
      });
      stream.end(body);
    });
  }
}
