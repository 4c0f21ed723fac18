// The in-process tier: one gateway built by createGateway inside the test process, with the in-memory adapter, on
// embedded PGlite in a temp folder (the default) or a scratch PostgreSQL database. Reached through Fastify's inject
// (no socket) or, for Socket.IO and plain HTTP clients, on a port of 127.0.0.1; the Database handle is exposed for
// tests that must reach under the API (seed rows, EXPLAIN a query). For the rules that live in one pod (validation,
// authorisation, conversations, search): they run in seconds. What crosses pods stays with test/helpers/gateways.ts.
// The fuzz tests use it too, on PostgreSQL and the real Redis with the gateway's warnings captured: in process, a test
// can list what the gateway serves and read every line it logs, and an error nobody handled ends the test run itself
// (main.ts's last-resort handler is deliberately not installed).
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import pino, { type Logger } from "pino";
import { createGateway, type Gateway } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { createDatabase, type Database } from "../../src/db/client.js";
import { applyMigrations } from "../../src/db/migrate.js";
import { createLogger } from "../../src/observability/logger.js";
import type { AuthResult } from "@chat-gateway/protocol";
import { connectRedis, type RedisConnections } from "../../src/realtime/redis.js";
import { uniqueName } from "./clients.js";
import { createScratchDatabase, REDIS_URL, TEST_JWT_SECRET } from "./gateways.js";

export type DatabaseKind = "postgres" | "pglite";

export interface Answer<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Record<string, string | string[] | number | undefined>;
}

export interface InProcessGateway {
  gateway: Gateway;
  database: Database;
  /** The scratch PostgreSQL database's URL (`database: "postgres"` only), for a test's own connection. */
  databaseUrl: string | undefined;
  /** Every line the gateway logged at `captureLogs` or above, parsed; empty without `captureLogs`. */
  logs: Record<string, unknown>[];
  /** The gateway's base URL on 127.0.0.1, for Socket.IO and HTTP clients. */
  url: string;
  /** An HTTP request through Fastify's inject: the whole stack (hooks, validation, errors) without a socket. */
  request<T = Record<string, unknown>>(
    method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE",
    path: string,
    options?: { token?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<Answer<T>>;
  /** Registers a user and answers its tokens. */
  register(username?: string): Promise<AuthResult>;
  close(): Promise<void>;
}

export interface InProcessOptions {
  /** @default "pglite" */
  database?: DatabaseKind;
  /** Configuration on top of the test defaults (rate limits off, logs silent). */
  env?: Record<string, string>;
  /** With "postgres": DATABASE_READ_URL for the scratch database's URL (a replica's copy of it). */
  readUrlFor?: (databaseUrl: string) => string;
  /** The real Redis (under a REDIS_PREFIX of its own) instead of the in-memory adapter. @default false */
  redis?: boolean;
  /** Keep what the gateway logs at this level and above in `logs`. @default none (silent) */
  captureLogs?: "warn" | "error";
}

export async function startInProcessGateway(options: InProcessOptions = {}): Promise<InProcessGateway> {
  const scratch = options.database === "postgres" ? await createScratchDatabase() : undefined;
  const dataDir = mkdtempSync(join(tmpdir(), "chat-inprocess-"));
  const config = loadConfig({
    JWT_SECRET: TEST_JWT_SECRET,
    DATA_DIR: dataDir,
    LOG_LEVEL: "silent",
    RATE_LIMITS: "off",
    // A loaded test machine stalls the loop for reasons of its own; tests of that refusal turn it on.
    WRITER_MAX_LOOP_LAG_MS: "0",
    WRITER_MAX_PUBLISH_LAG_MS: "0",
    ...(scratch ? { DATABASE_URL: scratch.url } : {}),
    ...(scratch && options.readUrlFor ? { DATABASE_READ_URL: options.readUrlFor(scratch.url) } : {}),
    // Its own Redis namespace: nothing another test's gateways publish reaches it, nor the other way round.
    ...(options.redis ? { REDIS_URL, REDIS_PREFIX: `inproc-${randomBytes(4).toString("hex")}` } : {}),
    ...options.env,
  });
  const logs: Record<string, unknown>[] = [];
  const log = options.captureLogs ? capturingLogger(options.captureLogs, logs) : createLogger(config.LOG_LEVEL);
  const database = await createDatabase({
    databaseUrl: config.DATABASE_URL,
    readUrl: config.DATABASE_READ_URL,
    dataDir,
    poolSize: 4,
    log,
  });
  let redis: RedisConnections | undefined;
  const cleanup = async () => {
    await redis?.close().catch(() => undefined);
    await database.close().catch(() => undefined);
    await scratch?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  let gateway: Gateway;
  let url: string;
  try {
    await applyMigrations(database);
    if (options.redis) redis = await connectRedis({ url: REDIS_URL }, log, { prefix: config.REDIS_PREFIX });
    // Every answer is checked against its schema in the OpenAPI document: a test that sees an answer the document
    // does not describe fails with `internal`.
    gateway = await createGateway({ database, log, checkAnswers: true, ...(redis ? { redis } : {}) }, config);
    url = await gateway.http.listen({ port: 0, host: "127.0.0.1" });
  } catch (err) {
    await cleanup();
    throw err;
  }

  const request: InProcessGateway["request"] = async (method, path, requestOptions = {}) => {
    const headers: Record<string, string> = { ...requestOptions.headers };
    if (requestOptions.token !== undefined) headers.authorization = `Bearer ${requestOptions.token}`;
    const res = await gateway.http.inject({
      method,
      url: path,
      headers,
      ...(requestOptions.body === undefined ? {} : { payload: requestOptions.body as Record<string, unknown> }),
    });
    return {
      status: res.statusCode,
      body: (res.body === "" ? {} : JSON.parse(res.body)) as never,
      headers: res.headers,
    };
  };

  return {
    gateway,
    database,
    databaseUrl: scratch?.url,
    logs,
    url,
    request,
    async register(username = uniqueName()) {
      const res = await request<AuthResult>("POST", "/v1/auth/register", {
        body: { username, password: "correct horse battery", displayName: username },
      });
      if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    },
    async close() {
      await gateway.drain(2_000);
      await cleanup();
    },
  };
}

/** A logger that parses every line into `logs` (request logs below `level` would cost more than the requests). */
function capturingLogger(level: "warn" | "error", logs: Record<string, unknown>[]): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) logs.push(JSON.parse(line) as never);
      done();
    },
  });
  return pino({ level }, sink);
}

/**
 * Every route the Fastify app serves, as "METHOD /path" (HEAD left out: Fastify adds it beside each GET), read from
 * `printRoutes`: Fastify has no other public listing, and an onRoute hook would miss the routes registered before it.
 */
export async function listRoutes(app: Gateway["http"]): Promise<string[]> {
  await app.ready();
  const routes: string[] = [];
  const prefixes: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split("\n")) {
    const match = /^(.*?)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length / 4;
    const path = (prefixes[depth - 1] ?? "") + match[2]!;
    prefixes[depth] = path;
    for (const method of match[3]?.split(", ") ?? []) if (method !== "HEAD") routes.push(`${method} ${path}`);
  }
  return routes;
}
