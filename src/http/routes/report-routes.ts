// POST /v1/reports: a user reports a message (of a conversation they are in) or another user.
import type { FastifyInstance } from "fastify";
import { ReportBody } from "@chat-gateway/protocol/schemas";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { RateLimiters } from "../../limits/rate-limits.js";
import type { Reports } from "../../safety/reports.js";
import { bearerOperation } from "../api-schemas.js";
import { requireUser, userOf } from "../authenticate.js";

export function reportRoutes(instance: FastifyInstance, deps: { reports: Reports; limits: RateLimiters }): void {
  const app = instance.withTypeProvider<ZodTypeProvider>();
  const report = bearerOperation(
    "safety",
    "Report a message or a user to the operators",
    { body: ReportBody },
    { 201: z.strictObject({ report: z.strictObject({ id: z.string() }) }) },
    ["not_found", "payload_too_large"],
  );
  app.post("/v1/reports", { schema: report, preValidation: requireUser }, async (request, reply) => {
    const userId = userOf(request);
    const body = request.body;
    await deps.limits.reports.consume(userId);
    const input =
      body.messageId !== undefined
        ? { messageId: body.messageId, reason: body.reason }
        : { userId: body.userId!, reason: body.reason };
    const report = await deps.reports.file(userId, input);
    return reply.code(201).send({ report });
  });
}
