// One gateway built in this process (createGateway, as main.ts does) on a scratch PostgreSQL database and the real
// Redis, listening on port 0. In process, the test can list what the gateway serves (its Fastify routes and its
// client events) and read every line it logs; an error nobody handled ends the test run itself, which is the
// strictest crash check there is (main.ts's last-resort handler is deliberately not installed).
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import pino from "pino";
import { createGateway, type Gateway } from "../../../src/app.js";
import { loadConfig } from "../../../src/config.js";
import { createDatabase, type Database } from "../../../src/db/client.js";
import { applyMigrations } from "../../../src/db/migrate.js";
import { connectRedis, type RedisConnections } from "../../../src/realtime/redis.js";
import { createScratchDatabase, REDIS_URL, TEST_JWT_SECRET } from "../gateways.js";

export interface InProcessGateway {
  url: string;
  gateway: Gateway;
  databaseUrl: string;
  /** Every line the gateway logged, parsed. */
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

export async function startInProcessGateway(env: Record<string, string> = {}): Promise<InProcessGateway> {
  const scratch = await createScratchDatabase();
  const config = loadConfig({
    NODE_ENV: "test",
    JWT_SECRET: TEST_JWT_SECRET,
    DATABASE_URL: scratch.url,
    REDIS_URL,
    // Its own Redis namespace: nothing another test's gateways publish reaches it, nor the other way round.
    REDIS_PREFIX: `fuzz-${randomBytes(4).toString("hex")}`,
    RATE_LIMITS: "off",
    ...env,
  });
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) logs.push(JSON.parse(line) as never);
      done();
    },
  });
  // Warnings and errors only: the fuzz looks for errors, and request logs would cost more than the requests.
  const log = pino({ level: "warn" }, sink);
  let database: Database | undefined;
  let redis: RedisConnections | undefined;
  try {
    database = await createDatabase({ databaseUrl: scratch.url, dataDir: "unused", poolSize: 5, log });
    await applyMigrations(database);
    redis = await connectRedis({ url: REDIS_URL }, log, { prefix: config.REDIS_PREFIX });
    const gateway = await createGateway({ database, redis, log }, config);
    const address = await gateway.http.listen({ port: 0, host: "127.0.0.1" });
    const db = database;
    const rd = redis;
    return {
      url: address,
      gateway,
      databaseUrl: scratch.url,
      logs,
      close: async () => {
        await gateway.drain(2_000);
        await rd.close();
        await db.close();
        await scratch.drop();
      },
    };
  } catch (err) {
    await redis?.close();
    await database?.close();
    await scratch.drop();
    throw err;
  }
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
