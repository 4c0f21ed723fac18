// The in-process tier: one gateway built by createGateway inside the test process, with the in-memory adapter, on
// embedded PGlite in a temp folder (the default) or a scratch PostgreSQL database. Reached through Fastify's inject
// (no socket) or, for Socket.IO and plain HTTP clients, on a port of 127.0.0.1; the Database handle is exposed for
// tests that must reach under the API (seed rows, EXPLAIN a query). For the rules that live in one pod (validation,
// authorisation, conversations, search): they run in seconds. What crosses pods stays with test/helpers/gateways.ts.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGateway, type Gateway } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { createDatabase, type Database } from "../../src/db/client.js";
import { applyMigrations } from "../../src/db/migrate.js";
import { createLogger } from "../../src/observability/logger.js";
import type { AuthResult } from "../../src/protocol/types.js";
import { uniqueName } from "./clients.js";
import { createScratchDatabase, TEST_JWT_SECRET } from "./gateways.js";

export type DatabaseKind = "postgres" | "pglite";

export interface Answer<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Record<string, string | string[] | number | undefined>;
}

export interface InProcessGateway {
  gateway: Gateway;
  database: Database;
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
    ...(scratch ? { DATABASE_URL: scratch.url } : {}),
    ...options.env,
  });
  const database = await createDatabase({ databaseUrl: config.DATABASE_URL, dataDir, poolSize: 4 });
  const cleanup = async () => {
    await database.close().catch(() => undefined);
    await scratch?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  let gateway: Gateway;
  let url: string;
  try {
    await applyMigrations(database);
    gateway = await createGateway({ database, log: createLogger(config.LOG_LEVEL) }, config);
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
