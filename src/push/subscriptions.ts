// The devices' registrations with push services. An endpoint (or FCM token) belongs to one device, so registering
// one that exists moves it to the caller: the browser or phone changed hands, and the old owner must stop getting
// this device's notifications.
import { randomUUID } from "node:crypto";
import { z } from "zod";
import type { Db } from "../db/client.js";
import { badRequest, notFound, unavailable } from "../errors.js";
import { isUuid } from "../chat/ports.js";
import { NO_CONTROL_CHARACTERS, noControlCharacters } from "@chat-gateway/protocol/schemas";
import { EndpointRefused, type EndpointPolicy } from "./endpoint-policy.js";

const base64urlBytes = (bytes: number) =>
  z
    .string()
    .regex(/^[A-Za-z0-9_-]+={0,2}$/, "must be base64url")
    .refine((v) => Buffer.from(v, "base64url").length === bytes, `must encode ${bytes} bytes`);

export const SubscribeBody = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("webpush"),
    endpoint: z
      .string()
      .max(2048)
      .url()
      .refine(noControlCharacters, NO_CONTROL_CHARACTERS)
      .refine((v) => v.startsWith("https://"), "must be an https URL"),
    keys: z.object({ p256dh: base64urlBytes(65), auth: base64urlBytes(16) }),
  }),
  z.object({
    type: z.literal("fcm"),
    token: z.string().min(1).max(4096).refine(noControlCharacters, NO_CONTROL_CHARACTERS),
  }),
  z.object({
    type: z.literal("apns"),
    /** The device token iOS hands the app, hex-encoded (32 bytes today; Apple says it may grow). */
    token: z
      .string()
      .regex(/^[0-9a-fA-F]{64,200}$/, "must be the hex device token")
      .transform((v) => v.toLowerCase()),
  }),
]);
export type SubscribeBody = z.infer<typeof SubscribeBody>;

export class PushSubscriptions {
  constructor(
    private readonly db: Db,
    private readonly enabled: { webpush: boolean; fcm: boolean; apns: boolean },
    private readonly limits: { policy?: EndpointPolicy | undefined; maxPerUser?: number } = {},
  ) {}

  /**
   * Registers (or moves to the caller) a subscription. A user keeps at most `maxPerUser`: registering one more
   * replaces the user's oldest (a browser that re-subscribes leaves its old endpoint behind, unseen by the user, so
   * refusing would lock people out; the newest devices are the ones in use).
   */
  async subscribe(userId: string, body: SubscribeBody): Promise<{ id: string }> {
    if (!this.enabled[body.type]) throw badRequest(`${body.type} push is not configured on this server`);
    if (body.type === "webpush" && this.limits.policy) {
      try {
        await this.limits.policy.check(body.endpoint);
      } catch (err) {
        if (!(err instanceof EndpointRefused)) throw err;
        if (err.temporary) throw unavailable(`could not resolve the endpoint's host, retry later`);
        throw badRequest(`endpoint ${err.message}`, [{ field: "endpoint", problem: err.message }]);
      }
    }
    const endpoint = body.type === "webpush" ? body.endpoint : body.token;
    const keys =
      body.type === "webpush" ? { p256dh: body.keys.p256dh, auth: body.keys.auth } : { p256dh: null, auth: null };
    const row = await this.db.pushSubscription.upsert({
      where: { type_endpoint: { type: body.type, endpoint } },
      create: { id: randomUUID(), userId, type: body.type, endpoint, ...keys },
      // Registered again: it is the newest, and the last to be replaced.
      update: { userId, ...keys, createdAt: new Date() },
      select: { id: true },
    });
    const max = this.limits.maxPerUser ?? 10;
    await this.db.$executeRawUnsafe(
      `DELETE FROM push_subscriptions
        WHERE user_id = $1::uuid AND id <> $2::uuid
          AND id NOT IN (SELECT id FROM push_subscriptions WHERE user_id = $1::uuid AND id <> $2::uuid
                          ORDER BY created_at DESC, id DESC LIMIT $3)`,
      userId,
      row.id,
      max - 1,
    );
    return { id: row.id };
  }

  /** Only the owner may delete; anyone else's subscription is not_found, like one that does not exist. */
  async unsubscribe(userId: string, id: string): Promise<void> {
    if (!isUuid(id)) throw notFound("subscription");
    const { count } = await this.db.pushSubscription.deleteMany({ where: { id, userId } });
    if (count === 0) throw notFound("subscription");
  }
}
