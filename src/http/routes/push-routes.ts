// /v1/push: the VAPID public key browsers subscribe with, and the caller's own push subscriptions.
import type { FastifyInstance } from "fastify";
import { notFound } from "../../errors.js";
import { SubscribeBody } from "../../push/subscriptions.js";
import type { Push } from "../../push/index.js";
import { userOf } from "../authenticate.js";

export function pushRoutes(app: FastifyInstance, push: Push): void {
  app.get("/v1/push/vapid-public-key", async (request) => {
    userOf(request);
    if (push.vapidPublicKey === undefined) throw notFound("web push configuration");
    return { publicKey: push.vapidPublicKey };
  });

  app.post("/v1/push/subscriptions", async (request, reply) => {
    const body = SubscribeBody.parse(request.body);
    return reply.code(201).send(await push.subscriptions.subscribe(userOf(request), body));
  });

  app.delete("/v1/push/subscriptions/:id", async (request, reply) => {
    await push.subscriptions.unsubscribe(userOf(request), (request.params as { id: string }).id);
    return reply.code(204).send();
  });
}
