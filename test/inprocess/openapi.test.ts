// The described API: /docs serves the Swagger UI under a CSP that lets it run, /docs/json is an OpenAPI 3.1 document
// of every route (each with its schema, summary, tags and security), and docs/openapi.json is that document: a
// change to a route or a schema without `npm run docs:openapi` fails here.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import type { OpenAPIV3_1 } from "openapi-types";
import { OPENAPI_FILE } from "../../scripts/openapi.js";
import { servedRoutes } from "../../src/http/api-docs.js";
import { startInProcessGateway, type InProcessGateway } from "../helpers/in-process.js";

const METHODS = ["get", "put", "post", "delete", "patch"] as const;

describe("OpenAPI document and /docs", () => {
  let gw: InProcessGateway;
  let document: OpenAPIV3_1.Document;

  before(async () => {
    gw = await startInProcessGateway();
    const res = await gw.gateway.http.inject({ method: "GET", url: "/docs/json" });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers["content-type"]), /^application\/json/);
    document = res.json();
  });
  after(() => gw.close());

  test("/docs serves the Swagger UI page, with a CSP of its own that allows what the UI loads", async () => {
    const page = await gw.gateway.http.inject({ method: "GET", url: "/docs/" });
    assert.equal(page.statusCode, 200);
    assert.match(String(page.headers["content-type"]), /^text\/html/);
    assert.match(page.body, /<div id="swagger-ui">/);
    const csp = String(page.headers["content-security-policy"]);
    assert.match(csp, /script-src 'self'(;|$)/, "no inline or remote script");
    assert.match(csp, /style-src 'self' 'unsafe-inline'/, "Swagger UI styles its elements inline");
    assert.match(csp, /frame-ancestors 'none'/);
    // What the page loads is served under /docs/static.
    for (const asset of ["swagger-ui-bundle.js", "swagger-initializer.js", "swagger-ui.css"]) {
      const res = await gw.gateway.http.inject({ method: "GET", url: `/docs/static/${asset}` });
      assert.equal(res.statusCode, 200, asset);
    }
    // Swagger UI's own redirect of its index.html loops on a query string; ours goes to /docs/.
    const index = await gw.gateway.http.inject({ method: "GET", url: "/docs/static/index.html?x=1" });
    assert.equal(index.statusCode, 302);
    assert.equal(index.headers.location, "/docs/");
    // The rest of the app keeps its strict policy.
    const api = await gw.gateway.http.inject({ method: "GET", url: "/healthz" });
    assert.match(String(api.headers["content-security-policy"]), /style-src 'self';/);
  });

  test("/docs/json is OpenAPI 3.1 with bearer JWT security and the error envelope", () => {
    assert.equal(document.openapi, "3.1.0");
    assert.equal(typeof document.info.title, "string");
    assert.deepEqual(document.components?.securitySchemes?.bearerAuth, {
      type: "http",
      scheme: "bearer",
      bearerFormat: "JWT",
      description: "an access token (login, register, refresh), an external provider's token or a service token",
    });
    const error = document.components?.schemas?.Error as OpenAPIV3_1.SchemaObject;
    const envelope = error.properties?.error as OpenAPIV3_1.SchemaObject;
    const code = envelope.properties?.code as OpenAPIV3_1.SchemaObject;
    assert.deepEqual(code.enum, [
      "bad_request",
      "unauthorized",
      "forbidden",
      "not_found",
      "conflict",
      "payload_too_large",
      "rate_limited",
      "unavailable",
      "internal",
    ]);
    // Every $ref names a component that exists.
    const refs = JSON.stringify(document).match(/"\$ref":"[^"]+"/g) ?? [];
    for (const ref of new Set(refs)) {
      const name = ref.slice('"$ref":"#/components/schemas/'.length, -1);
      assert.ok(document.components?.schemas?.[name], `${ref} resolves`);
    }
  });

  test("every operation has a summary, tags, security, its path parameters and its answers, errors included", () => {
    const tags = new Set((document.tags ?? []).map((t) => t.name));
    let operations = 0;
    for (const [path, item] of Object.entries(document.paths ?? {})) {
      for (const method of METHODS) {
        const op = item?.[method];
        if (op === undefined) continue;
        operations++;
        const where = `${method.toUpperCase()} ${path}`;
        assert.ok(op.summary, `${where}: summary`);
        assert.ok(op.tags?.length === 1 && tags.has(op.tags[0]!), `${where}: a declared tag`);
        assert.ok(Array.isArray(op.security), `${where}: security`);
        const bearer = op.security.some((s) => "bearerAuth" in s);
        assert.equal(bearer, path.startsWith("/v1/") && !path.startsWith("/v1/auth/"), `${where}: bearer JWT`);
        const pathParams = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
        const declared = (op.parameters ?? []).flatMap((p) => ("in" in p && p.in === "path" ? [p.name] : []));
        assert.deepEqual(declared.sort(), pathParams.sort(), `${where}: path parameters`);
        const statuses = Object.keys(op.responses ?? {});
        assert.ok(
          statuses.some((s) => s.startsWith("2")),
          `${where}: a success answer`,
        );
        for (const status of ["400", "500", ...(bearer ? ["401", "429", "503"] : [])]) {
          const answer = op.responses?.[status] as OpenAPIV3_1.ResponseObject | undefined;
          assert.deepEqual(
            answer?.content?.["application/json"]?.schema,
            { $ref: "#/components/schemas/Error" },
            `${where}: ${status} is the error envelope`,
          );
        }
      }
    }
    assert.ok(operations >= 43, `${operations} operations`);
  });

  test("every route the gateway serves is in the document (and each documented one is routed)", () => {
    const documented = new Set<string>();
    for (const [path, item] of Object.entries(document.paths ?? {})) {
      for (const method of METHODS) {
        if (item?.[method] === undefined) continue;
        const url = path.replace(/\{(\w+)\}/g, ":$1");
        documented.add(`${method.toUpperCase()} ${url}`);
        assert.ok(gw.gateway.http.hasRoute({ method: method.toUpperCase() as "GET", url }), `${method} ${url} routed`);
      }
    }
    // Every route registered is documented, or is the page, the UI, a HEAD twin or the CORS preflight.
    const undocumented = servedRoutes(gw.gateway.http).filter(
      (r) => !documented.has(r) && !/^(HEAD|OPTIONS) /.test(r) && !/^GET \/(docs|\*|$)/.test(r),
    );
    assert.deepEqual(undocumented, []);
    for (const route of ["POST /v1/auth/login", "POST /v1/conversations/:id/messages", "GET /metrics"]) {
      assert.ok(documented.has(route), route);
    }
  });

  test("docs/openapi.json is the document the code generates (npm run docs:openapi)", () => {
    const committed = JSON.parse(readFileSync(OPENAPI_FILE, "utf8")) as unknown;
    assert.deepEqual(
      committed,
      document,
      "docs/openapi.json differs from the routes' schemas: run `npm run docs:openapi` and commit the result",
    );
  });

  test("with API_DOCS=off, /docs is not routed", async () => {
    const off = await startInProcessGateway({ env: { API_DOCS: "off" } });
    try {
      for (const url of ["/docs", "/docs/", "/docs/json"]) {
        const res = await off.gateway.http.inject({ method: "GET", url });
        assert.equal(res.statusCode, 404, url);
        assert.equal(res.json().error.code, "not_found");
      }
    } finally {
      await off.close();
    }
  });
});
