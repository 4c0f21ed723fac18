// /v1/push: the VAPID public key browsers subscribe with, and the caller's own push subscriptions.
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { notFound } from "../../errors.js";
import { SubscribeBody } from "../../push/subscriptions.js";
import type { Push } from "../../push/index.js";
import { bearerOperation, pathParams } from "../api-schemas.js";
import { userOf } from "../authenticate.js";

export function pushRoutes(instance: FastifyInstance, push: Push): void {
  const app = instance.withTypeProvider<ZodTypeProvider>();

  const vapid = bearerOperation(
    "push",
    "The VAPID public key browsers subscribe with (404 without web push)",
    {},
    { 200: z.strictObject({ publicKey: z.string() }) },
    ["not_found"],
  );
  app.get("/v1/push/vapid-public-key", { schema: vapid }, async (request) => {
    userOf(request);
    if (push.vapidPublicKey === undefined) throw notFound("web push configuration");
    return { publicKey: push.vapidPublicKey };
  });

  const subscribe = bearerOperation(
    "push",
    "Register this device for push (web push, FCM or APNs); moves an existing one to the caller",
    { body: SubscribeBody },
    { 201: z.strictObject({ id: z.string() }) },
    ["payload_too_large"],
  );
  app.post("/v1/push/subscriptions", { schema: subscribe }, async (request, reply) => {
    return reply.code(201).send(await push.subscriptions.subscribe(userOf(request), request.body));
  });

  const unsubscribe = bearerOperation(
    "push",
    "Remove one of the caller's push subscriptions",
    { params: pathParams("id") },
    { 204: "removed" },
    ["not_found"],
  );
  app.delete("/v1/push/subscriptions/:id", { schema: unsubscribe }, async (request, reply) => {
    await push.subscriptions.unsubscribe(userOf(request), request.params.id);
    return reply.code(204).send();
  });
}
