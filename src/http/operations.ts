// Health and metrics routes, and the small internal server that carries them when METRICS_PORT is set. On their own
// port, /metrics stays off the public entry by construction (the Service and the route never lead there) instead of
// by a deny rule at the proxy, and a probe or scrape never queues behind client traffic in the public listener.
import { z } from "zod";
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { GatewayMetrics } from "../observability/metrics.js";
import { answers, ReadinessSchema } from "./api-schemas.js";
import { useZodSchemas } from "./zod-schemas.js";

export interface OperationsDeps {
  metrics: GatewayMetrics;
  /** Resolves when the database and Redis answer and the pod is not draining. */
  readiness(): Promise<{ ready: boolean; checks: Record<string, boolean> }>;
}

/** /healthz and /readyz, and /metrics unless `withMetrics` is false (the public server once METRICS_PORT is set). */
export function registerOperationsRoutes(app: FastifyInstance, deps: OperationsDeps, withMetrics = true): void {
  const schema = (summary: string, response: Record<number, unknown>) => ({
    schema: { summary, tags: ["operations"], security: [], response },
  });
  app.get(
    "/healthz",
    schema("Liveness: the process answers", answers({ 200: z.strictObject({ ok: z.literal(true) }) }, [])),
    async () => ({ ok: true }),
  );
  const readiness = ReadinessSchema.describe("ready; 503 with the same body while not");
  app.get(
    "/readyz",
    schema("Readiness: the database and Redis answer and the pod is not draining", {
      ...answers({ 200: readiness }, []),
      503: { description: "not ready", content: { "application/json": { schema: readiness } } },
    }),
    async (_request, reply) => {
      const state = await deps.readiness();
      return reply.code(state.ready ? 200 : 503).send(state);
    },
  );
  if (!withMetrics) return;
  const metrics = { description: "Prometheus text format", content: { "text/plain": { schema: z.string() } } };
  app.get("/metrics", schema("Prometheus metrics", answers({ 200: metrics }, [])), async (_request, reply) => {
    return reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
}

/** The internal operations server (METRICS_PORT): the three routes and nothing else; main.ts listens on it. */
export function createOperationsServer(deps: OperationsDeps & { log: Logger }): FastifyInstance {
  const app: FastifyInstance = Fastify({
    // Probes every few seconds would drown the request log; errors are still logged.
    loggerInstance: deps.log.child({ server: "operations" }) as FastifyBaseLogger,
    disableRequestLogging: true,
    // Nothing here reads a body, and a scrape is answered in milliseconds.
    bodyLimit: 1024,
    requestTimeout: 10_000,
  });
  useZodSchemas(app);
  app.setNotFoundHandler((_request, reply) => {
    void reply.code(404).send({ error: { code: "not_found", message: "no such route" } });
  });
  registerOperationsRoutes(app, deps);
  return app;
}
