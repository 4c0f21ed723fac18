// The OpenAPI 3.1 document of the HTTP API, generated from the routes' own zod schemas (@fastify/swagger with
// fastify-type-provider-zod's transforms), and the Swagger UI that shows it at /docs (API_DOCS). docs/openapi.json
// is this document committed; `npm run docs:openapi` writes it and a test fails when the two differ.
import { readFileSync } from "node:fs";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from "fastify";
import { jsonSchemaTransform, jsonSchemaTransformObject } from "fastify-type-provider-zod";

export const DOCS_PREFIX = "/docs";

/**
 * The page's CSP for /docs only: the app's policy (http-server.ts) plus inline styles, which Swagger UI sets on its
 * elements. Its scripts are files under /docs/static, so script-src stays 'self'.
 */
const DOCS_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** The package's version (package.json sits two folders up from src/http and from dist/http alike). */
const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

export function registerApiDocs(app: FastifyInstance, options: { ui: boolean }): void {
  app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Chat gateway HTTP API",
        version: VERSION,
        description:
          "The HTTP half of the chat gateway's contract (the Socket.IO events are in the README). Every error " +
          "answers `{error: {code, message, details?}}` with the status of its code.",
        license: { name: "MIT", identifier: "MIT" },
      },
      components: {
        securitySchemes: {
          bearerAuth: {
            type: "http",
            scheme: "bearer",
            bearerFormat: "JWT",
            description: "an access token (login, register, refresh), an external provider's token or a service token",
          },
        },
      },
      tags: [
        { name: "auth", description: "own accounts: register, login, refresh, logout" },
        { name: "users", description: "the caller, user search, blocking, account deletion" },
        { name: "conversations", description: "conversations, members, message requests" },
        { name: "messages", description: "history, sending, read markers, edits, deletions, reactions" },
        { name: "attachments", description: "uploads and their download URLs" },
        { name: "search", description: "message search" },
        { name: "push", description: "push subscriptions" },
        { name: "safety", description: "reports" },
        { name: "admin", description: "the operator API (admin service tokens)" },
        { name: "files", description: "embedded object storage (signed URLs)" },
        { name: "operations", description: "health, readiness and metrics" },
      ],
    },
    transform: jsonSchemaTransform,
    transformObject: (document) => withoutUnusedSchemas(jsonSchemaTransformObject(document)),
  });
  if (options.ui) {
    app.register(swaggerUi, {
      routePrefix: DOCS_PREFIX,
      staticCSP: DOCS_CSP,
      uiConfig: { deepLinking: true },
      uiHooks: { onRequest: indexWithQuery },
    });
  }
}

/**
 * Swagger UI redirects /docs/static/index.html to /docs/ by rewriting the URL's end, which a query string hides: the
 * redirect pointed at itself, a loop (found by the fuzz test). Such a request goes to /docs/ here instead.
 */
async function indexWithQuery(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (request.routeOptions.url === `${DOCS_PREFIX}/static/index.html` && request.url.includes("?")) {
    await reply.redirect(`${DOCS_PREFIX}/`);
  }
}

const served = new WeakMap<FastifyInstance, string[]>();

/**
 * An onRoute hook on the root instance: a route without a schema (summary, tags and answers) or `hide` does not
 * start, so the document cannot miss one; each route is listed for `servedRoutes`.
 */
export function guardRouteSchemas(app: FastifyInstance): void {
  const routes: string[] = [];
  served.set(app, routes);
  app.addHook("onRoute", (route: RouteOptions) => {
    for (const method of [route.method].flat()) routes.push(`${method} ${route.url}`);
    if (route.method === "HEAD" || route.schema?.hide === true) return;
    const schema = route.schema as { summary?: unknown; tags?: unknown; response?: unknown } | undefined;
    if (schema?.summary === undefined || schema.tags === undefined || schema.response === undefined) {
      throw new Error(`${String(route.method)} ${route.url}: every route needs a schema with summary, tags, response`);
    }
  });
}

/** `METHOD /url` of every route registered on the instance (the test compares them with the document). */
export function servedRoutes(app: FastifyInstance): readonly string[] {
  return served.get(app) ?? [];
}

/**
 * The provider writes each named schema twice, as the request side (`<Name>Input`) and the answer side; the answers'
 * schemas are never sent, so their Input twins are dropped, and any other component nothing refers to.
 */
function withoutUnusedSchemas<T>(document: T): T {
  const doc = document as { components?: { schemas?: Record<string, unknown> } };
  const schemas = doc.components?.schemas;
  if (schemas === undefined) return document;
  const used = new Set<string>();
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(visit);
    else if (value !== null && typeof value === "object") {
      for (const [key, child] of Object.entries(value)) {
        if (key === "$ref" && typeof child === "string") {
          const name = child.replace("#/components/schemas/", "");
          if (!used.has(name)) {
            used.add(name);
            visit(schemas[name]);
          }
        } else visit(child);
      }
    }
  };
  visit({ ...doc, components: { ...doc.components, schemas: {} } });
  doc.components!.schemas = Object.fromEntries(Object.entries(schemas).filter(([name]) => used.has(name)));
  return document;
}
