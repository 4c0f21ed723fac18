// The devices' registrations with push services. An endpoint (or FCM token) belongs to one device, so registering
// one that exists moves it to the caller: the browser or phone changed hands, and the old owner must stop getting
// this device's notifications.
import { randomUUID } from "node:crypto";
import { z } from "zod";
import type { Db } from "../db/client.js";
import { badRequest, notFound } from "../errors.js";
import { isUuid } from "../chat/ports.js";

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
      .refine((v) => v.startsWith("https://"), "must be an https URL"),
    keys: z.object({ p256dh: base64urlBytes(65), auth: base64urlBytes(16) }),
  }),
  z.object({ type: z.literal("fcm"), token: z.string().min(1).max(4096) }),
]);
export type SubscribeBody = z.infer<typeof SubscribeBody>;

export class PushSubscriptions {
  constructor(
    private readonly db: Db,
    private readonly enabled: { webpush: boolean; fcm: boolean },
  ) {}

  async subscribe(userId: string, body: SubscribeBody): Promise<{ id: string }> {
    if (!this.enabled[body.type]) throw badRequest(`${body.type} push is not configured on this server`);
    const endpoint = body.type === "webpush" ? body.endpoint : body.token;
    const keys =
      body.type === "webpush" ? { p256dh: body.keys.p256dh, auth: body.keys.auth } : { p256dh: null, auth: null };
    const row = await this.db.pushSubscription.upsert({
      where: { type_endpoint: { type: body.type, endpoint } },
      create: { id: randomUUID(), userId, type: body.type, endpoint, ...keys },
      update: { userId, ...keys },
      select: { id: true },
    });
    return { id: row.id };
  }

  /** Only the owner may delete; anyone else's subscription is not_found, like one that does not exist. */
  async unsubscribe(userId: string, id: string): Promise<void> {
    if (!isUuid(id)) throw notFound("subscription");
    const { count } = await this.db.pushSubscription.deleteMany({ where: { id, userId } });
    if (count === 0) throw notFound("subscription");
  }
}
