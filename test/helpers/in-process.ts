// The in-process tier: one gateway built by createGateway inside the test process, on embedded PGlite in a temp
// folder and the in-memory adapter, reached through Fastify's inject (no socket, no port) or, for Socket.IO, on a
// port of 127.0.0.1. For the rules that live in one pod (validation, authorisation, conversations): they run in
// seconds. What crosses pods and processes stays with test/helpers/gateways.ts.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { createGateway, type Gateway } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { createDatabase, type Database } from "../../src/db/client.js";
import { applyMigrations } from "../../src/db/migrate.js";
import type { AuthResult } from "../../src/protocol/types.js";
import { uniqueName } from "./clients.js";

export interface Answer<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Record<string, string | string[] | number | undefined>;
}

export interface InProcessGateway {
  gateway: Gateway;
  database: Database;
  /** An HTTP request through Fastify's inject: the whole stack (hooks, validation, errors) without a socket. */
  request<T = Record<string, unknown>>(
    method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE",
    path: string,
    options?: { token?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<Answer<T>>;
  /** Registers a user and answers its tokens. */
  register(username?: string): Promise<AuthResult>;
  /** Listens on 127.0.0.1 (port 0) for Socket.IO clients; answers the base URL. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

/** Starts a gateway in this process; `env` overrides the configuration (rate limits are off unless turned on). */
export async function startInProcessGateway(env: Record<string, string> = {}): Promise<InProcessGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), "chat-inprocess-"));
  const config = loadConfig({ DATA_DIR: dataDir, RATE_LIMITS: "off", LOG_LEVEL: "silent", ...env });
  const log = pino({ level: config.LOG_LEVEL });
  const database = await createDatabase({ dataDir, log });
  await applyMigrations(database, () => undefined);
  const gateway = await createGateway({ database, log }, config);
  await gateway.http.ready();

  const request: InProcessGateway["request"] = async (method, path, options = {}) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    const res = await gateway.http.inject({
      method,
      url: path,
      headers,
      ...(options.body === undefined ? {} : { payload: options.body as Record<string, unknown> }),
    });
    const text = res.body;
    return {
      status: res.statusCode,
      body: (text === "" ? {} : JSON.parse(text)) as never,
      headers: res.headers,
    };
  };

  return {
    gateway,
    database,
    request,
    async register(username = uniqueName()) {
      const res = await request<AuthResult>("POST", "/v1/auth/register", {
        body: { username, password: "correct horse battery", displayName: username },
      });
      if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    },
    async listen() {
      const address = await gateway.http.listen({ port: 0, host: "127.0.0.1" });
      return address;
    },
    async close() {
      await gateway.drain(1_000);
      await database.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
