// POST /v1/reports: a user reports a message (of a conversation they are in) or another user.
import type { FastifyInstance } from "fastify";
import { ReportBody } from "@chat-gateway/protocol/schemas";
import type { RateLimiters } from "../../limits/rate-limits.js";
import type { Reports } from "../../safety/reports.js";
import { userOf } from "../authenticate.js";

export function reportRoutes(app: FastifyInstance, deps: { reports: Reports; limits: RateLimiters }): void {
  app.post("/v1/reports", async (request, reply) => {
    const userId = userOf(request);
    const body = ReportBody.parse(request.body);
    await deps.limits.reports.consume(userId);
    const input =
      body.messageId !== undefined
        ? { messageId: body.messageId, reason: body.reason }
        : { userId: body.userId!, reason: body.reason };
    const report = await deps.reports.file(userId, input);
    return reply.code(201).send({ report });
  });
}
