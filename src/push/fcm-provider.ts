// Firebase Cloud Messaging HTTP v1, with a small OAuth client of our own: a service-account JWT (RS256) is traded
// for an access token at the token URL, cached until shortly before it expires. Android gets a data message, so the
// app decides what to show; Apple devices get what APNs accepts (apple.ts: an alert with mutable-content, or a
// background push at priority 5), since APNs refuses a data-only push at priority 10. collapse_key /
// apns-collapse-id make a newer notification for a conversation replace the older one.
import jwt from "jsonwebtoken";
import { z } from "zod";
import { applePush, type ApplePushStyle } from "./apple.js";
import { type DeliveryOutcome, settle, TransientPushError, unreachable } from "./delivery-outcome.js";
import { type PushNotification, type PushProvider, type PushTarget } from "./types.js";

const ServiceAccount = z.object({
  project_id: z.string().min(1),
  client_email: z.string().min(1),
  private_key: z.string().min(1),
  private_key_id: z.string().optional(),
  token_uri: z.string().url().optional(),
});
type ServiceAccount = z.infer<typeof ServiceAccount>;

const TokenAnswer = z.object({ access_token: z.string().min(1), expires_in: z.coerce.number().positive() });

const SCOPE = "https://www.googleapis.com/auth/firebase.messaging";

export interface FcmOptions {
  /** The service account JSON text (FCM_SERVICE_ACCOUNT). */
  serviceAccountJson: string;
  /** Base URL of the FCM API; the send URL is `${endpoint}/v1/projects/<project>/messages:send`. */
  endpoint: string;
  /** Overrides the service account's token_uri. */
  tokenUrl?: string | undefined;
  ttlSeconds: number;
  /** What Apple devices get through FCM. @default "alert" */
  appleStyle?: ApplePushStyle;
}

/** Throws at start-up when the service account is not usable, naming the variable but never its content. */
export function parseServiceAccount(json: string): ServiceAccount {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new Error("FCM_SERVICE_ACCOUNT: not valid JSON");
  }
  const parsed = ServiceAccount.safeParse(raw);
  if (!parsed.success) {
    throw new Error(
      `FCM_SERVICE_ACCOUNT: missing or invalid ${parsed.error.issues.map((i) => i.path.join(".")).join(", ")}`,
    );
  }
  return parsed.data;
}

export class FcmProvider implements PushProvider {
  readonly name = "fcm";
  private readonly account: ServiceAccount;
  private readonly tokenUrl: string;
  private token: { value: string; expiresAt: number } | undefined;
  private pendingToken: Promise<string> | undefined;

  constructor(private readonly options: FcmOptions) {
    this.account = parseServiceAccount(options.serviceAccountJson);
    this.tokenUrl = options.tokenUrl ?? this.account.token_uri ?? "https://oauth2.googleapis.com/token";
  }

  async send(target: PushTarget, notification: PushNotification, collapseKey: string): Promise<DeliveryOutcome> {
    const accessToken = await this.accessToken();
    const url = `${this.options.endpoint.replace(/\/$/, "")}/v1/projects/${encodeURIComponent(this.account.project_id)}/messages:send`;
    const data: Record<string, string> = {};
    for (const [key, value] of Object.entries(notification)) {
      if (value !== undefined) data[key] = typeof value === "string" ? value : JSON.stringify(value);
    }
    let res: Response;
    let answer: unknown;
    try {
      res = await fetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${accessToken}`, "content-type": "application/json" },
        body: JSON.stringify({
          message: {
            token: target.endpoint,
            data,
            android: { collapse_key: collapseKey, priority: "high", ttl: `${this.options.ttlSeconds}s` },
            apns: this.apns(notification, collapseKey),
          },
        }),
        signal: AbortSignal.timeout(10_000),
      });
      answer = await res.json().catch(() => undefined);
    } catch (err) {
      throw unreachable("FCM", err);
    }
    return settle("fcm", { status: res.status, reasons: fcmReasons(answer) }, "FCM", () => (this.token = undefined));
  }

  /** FCM's `apns` block: headers and an `aps` payload Apple accepts, with the notification's fields beside it. */
  private apns(notification: PushNotification, collapseKey: string) {
    const push = applePush(notification, this.options.appleStyle ?? "alert");
    return { headers: { "apns-collapse-id": collapseKey.slice(0, 64), ...push.headers }, payload: push.payload };
  }

  private async accessToken(): Promise<string> {
    if (this.token && this.token.expiresAt > Date.now() + 60_000) return this.token.value;
    this.pendingToken ??= this.fetchToken().finally(() => (this.pendingToken = undefined));
    return this.pendingToken;
  }

  private async fetchToken(): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const assertion = jwt.sign(
      { iss: this.account.client_email, scope: SCOPE, aud: this.tokenUrl, iat: now, exp: now + 3600 },
      this.account.private_key,
      { algorithm: "RS256", ...(this.account.private_key_id ? { keyid: this.account.private_key_id } : {}) },
    );
    let res: Response;
    try {
      res = await fetch(this.tokenUrl, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion }).toString(),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      throw new TransientPushError(`FCM token request failed: ${(err as Error).message}`);
    }
    const parsed = TokenAnswer.safeParse(await res.json().catch(() => undefined));
    // A refused assertion is a configuration problem, but retrying costs little and covers a token service blip.
    if (!res.ok || !parsed.success)
      throw new TransientPushError(`FCM token endpoint answered ${res.status}`, res.status);
    this.token = { value: parsed.data.access_token, expiresAt: Date.now() + parsed.data.expires_in * 1000 };
    return this.token.value;
  }
}

/** What an FCM error answer says besides its HTTP status: its `status` and the details' `errorCode`s. */
function fcmReasons(answer: unknown): string[] {
  const error = (answer as { error?: { status?: unknown; details?: { errorCode?: unknown }[] } } | undefined)?.error;
  if (!error) return [];
  const details = Array.isArray(error.details) ? error.details : [];
  return [error.status, ...details.map((d) => d?.errorCode)].filter((r): r is string => typeof r === "string");
}
