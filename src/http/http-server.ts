// The HTTP side: Fastify with the contract's error shape, CORS from the origin allowlist, bearer authentication
// for /v1 (except /v1/auth), health and metrics outside /v1, and the chat page at /.
import { existsSync } from "node:fs";
import cors from "@fastify/cors";
import helmet from "@fastify/helmet";
import fastifyStatic from "@fastify/static";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from "fastify";
import type { Logger } from "pino";
import { toWireError } from "../errors.js";
import type { GatewayMetrics } from "../observability/metrics.js";
import type { OriginPolicy } from "../realtime/origins.js";
import { guardRouteSchemas, registerApiDocs } from "./api-docs.js";
import { authenticator } from "./authenticate.js";
import { registerOperationsRoutes } from "./operations.js";
import { clientErrorHandler } from "./client-errors.js";
import { useUtf8JsonParser } from "./json-body.js";
import { refuseMalformedQuery } from "./query-encoding.js";
import { authRoutes } from "./routes/auth-routes.js";
import { chatRoutes, type ChatRouteDeps } from "./routes/chat-routes.js";
import { useZodSchemas } from "./zod-schemas.js";

export interface HttpDeps extends ChatRouteDeps {
  auth: Parameters<typeof authenticator>[0]["auth"];
  /** Register, login and refresh of own accounts; false refuses them with `forbidden` (OWN_ACCOUNTS). @default true */
  ownAccounts?: boolean | undefined;
  log: Logger;
  metrics: GatewayMetrics;
  origins: OriginPolicy;
  bodyLimit: number;
  /** Fastify's trustProxy: false (the socket peer is the client), a hop count, or trusted proxy addresses/CIDRs. */
  trustProxy?: false | number | string[] | undefined;
  /** Longest a request may take to arrive, ms (0: none). @default 30000 */
  requestTimeoutMs?: number | undefined;
  /** Built chat page, served at / when present. */
  webRoot?: string | undefined;
  /** Readiness: resolves when the database and Redis answer and the pod is not draining. */
  readiness(): Promise<{ ready: boolean; checks: Record<string, boolean> }>;
  /** Origin of the attachment storage (S3), which the page loads images from and PUTs uploads to. */
  storageOrigin?: string | undefined;
  /** Serve /metrics here too; false when it has its own port (METRICS_PORT). @default true */
  metricsOnMainPort?: boolean | undefined;
  /** The OpenAPI document's Swagger UI at /docs (API_DOCS). @default true */
  apiDocs?: boolean | undefined;
  /** Check every answer against its documented schema (the in-process tests); off, answers are only serialized. */
  checkAnswers?: boolean | undefined;
  /** Extra routes (push, service publishing) registered by their own modules. */
  extraRoutes?: ((app: FastifyInstance) => void)[];
}

export function createHttpServer(deps: HttpDeps): FastifyInstance {
  const app: FastifyInstance = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    bodyLimit: deps.bodyLimit,
    trustProxy: trustProxyOption(deps.trustProxy),
    // A client that trickles its headers or body is cut off instead of holding a connection (Slowloris).
    requestTimeout: deps.requestTimeoutMs ?? 30_000,
    requestIdHeader: "x-request-id",
    // Errors Fastify meets before routing (a malformed percent-encoding in the path, FST_ERR_BAD_URL) bypass the
    // error handler; without this they get Fastify's own body instead of the contract's error envelope.
    clientErrorHandler,
    frameworkErrors: (err, _request, reply) => {
      const { error, status } = toWireError(err);
      void (reply as FastifyReply).code(status).send({ error });
    },
  });
  app.decorateRequest("caller", null);
  // Routes validate their input with zod schemas that also document them; one without a schema does not start.
  useZodSchemas(app, deps.checkAnswers ?? false);
  guardRouteSchemas(app);
  registerApiDocs(app, { ui: deps.apiDocs ?? true });
  const storage = deps.storageOrigin === undefined ? [] : [deps.storageOrigin];

  // Security headers on every answer, the page and the API alike. The CSP allows what the chat page loads: its own
  // script (app.js) and stylesheet, the data: favicon, and fetch/WebSocket to its own origin ('self' covers ws(s):
  // to the same host). No inline script or style attribute, no plugins, no framing, no <base> tricks.
  app.register(helmet, {
    global: true,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", "data:", ...storage],
        mediaSrc: ["'self'", ...storage],
        connectSrc: ["'self'", ...storage],
        fontSrc: ["'self'"],
        manifestSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    frameguard: { action: "deny" },
    referrerPolicy: { policy: "no-referrer" },
    // Cross-origin API clients (CORS_ORIGINS) read answers through CORS; CORP would only stop no-cors embedding.
    crossOriginResourcePolicy: { policy: "same-site" },
  });

  app.register(cors, {
    origin: (origin, callback) => callback(null, deps.origins.allows(origin, undefined)),
    credentials: false,
    methods: ["GET", "POST", "PATCH", "PUT", "DELETE"],
  });

  app.setErrorHandler((err, request, reply) => {
    const { error, status, isBug } = toWireError(err);
    if (isBug) request.log.error({ err, reqId: request.id }, "request failed");
    // A refusal that says when to come back (overload, rate limit) says it to HTTP clients and proxies too.
    const retryAfterMs = (error.details as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
    if (typeof retryAfterMs === "number") void reply.header("retry-after", String(Math.ceil(retryAfterMs / 1000)));
    void reply.code(status).send({ error });
  });
  app.setNotFoundHandler((_request, reply) => {
    void reply.code(404).send({ error: { code: "not_found", message: "no such route" } });
  });
  app.addHook("onRequest", refuseMalformedQuery);
  useUtf8JsonParser(app);
  app.addHook("onResponse", async (request, reply) => {
    deps.metrics.httpRequests.inc({
      route: request.routeOptions.url ?? "unmatched",
      method: request.method,
      status: String(reply.statusCode),
    });
  });

  // Routes are registered in plugins, after the documentation plugin, so that it sees every one of them.
  app.register(async (open) => {
    // /healthz and /readyz stay here even with an operations port, for probes and balancers configured before it.
    registerOperationsRoutes(open, deps, deps.metricsOnMainPort ?? true);
    authRoutes(open, deps);
  });
  app.register(async (api) => {
    api.addHook("onRequest", authenticator(deps));
    chatRoutes(api, deps);
    for (const register of deps.extraRoutes ?? []) register(api);
  });

  if (deps.webRoot !== undefined && existsSync(deps.webRoot)) {
    app.register(fastifyStatic, { root: deps.webRoot, prefix: "/", index: ["index.html"] });
  }
  return app;
}

/**
 * Fastify's trustProxy for TRUST_PROXY. Never `true`: that believes the leftmost X-Forwarded-For, which any client
 * writes itself. A hop count n trusts the socket peer and the n-1 addresses to its right in X-Forwarded-For, so the
 * client address is the n-th from the right (proxy-addr numbers the peer 0); a list trusts exactly those proxies.
 */
export function trustProxyOption(setting: false | number | string[] | undefined) {
  if (setting === undefined || setting === false || setting === 0) return false;
  if (typeof setting === "number") return (_address: string, hop: number) => hop < setting;
  return setting;
}
