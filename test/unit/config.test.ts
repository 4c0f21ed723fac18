import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, loadConfig } from "../../src/config.js";
import { parseClusterNodes } from "../../src/realtime/cluster-nodes.js";

const production = {
  DATABASE_URL: "postgresql://postgres@127.0.0.1:5432/test",
  REDIS_URL: "redis://127.0.0.1:6379",
  JWT_SECRET: "x".repeat(32),
};

test("defaults match the contract's table", () => {
  const config = loadConfig(production);
  assert.equal(config.PORT, 3000);
  assert.equal(config.HOST, "0.0.0.0");
  assert.equal(config.DATA_DIR, "./data");
  assert.equal(config.JWT_ISSUER, "chat-gateway");
  assert.equal(config.JWT_AUDIENCE, "chat-gateway");
  assert.equal(config.ACCESS_TOKEN_TTL, 900);
  assert.equal(config.MESSAGE_MAX_CHARS, 4000);
  assert.equal(config.RATE_LIMITS, true);
  assert.equal(config.REDIS_ADAPTER, undefined, "sharded is chosen at start-up when the server supports it");
  assert.equal(config.MIGRATE_ON_START, false, "production migrates with the migration job unless asked");
  assert.ok(Object.isFrozen(config));
});

test("a bad start lists every bad variable at once", () => {
  const error = (() => {
    try {
      loadConfig({ ...production, PORT: "http", REDIS_ADAPTER: "fancy", MESSAGE_MAX_CHARS: "0", JWT_SECRET: "short" });
    } catch (err) {
      return err;
    }
  })();
  assert.ok(error instanceof ConfigError);
  const names = error.problems.map((p) => p.split(":")[0]);
  assert.deepEqual(names.sort(), ["JWT_SECRET", "MESSAGE_MAX_CHARS", "PORT", "REDIS_ADAPTER"]);
});

test("production refuses to start without JWT_SECRET; embedded mode generates one", () => {
  assert.throws(() => loadConfig({ ...production, JWT_SECRET: "" }), /JWT_SECRET/);
  const embedded = loadConfig({ DATA_DIR: `/tmp/gw-config-test-${process.pid}` });
  assert.equal(embedded.embedded, true);
  assert.equal(embedded.MIGRATE_ON_START, true);
  assert.ok(embedded.JWT_SECRET.length >= 32);
  assert.equal(loadConfig({ DATA_DIR: `/tmp/gw-config-test-${process.pid}` }).JWT_SECRET, embedded.JWT_SECRET);
});

test("a bad start lists every problem between variables too, beside the variables that are bad on their own", () => {
  const error = (() => {
    try {
      loadConfig({
        DATABASE_URL: production.DATABASE_URL,
        PORT: "http",
        VAPID_PUBLIC_KEY: "only-one-half",
        PUSH_WEBHOOK_SECRET: "x".repeat(32),
        APNS_KEY_ID: "ABC123DEFG",
        PRESENCE_HEARTBEAT_MS: "20000",
        PRESENCE_TTL_MS: "10000",
      });
    } catch (err) {
      return err;
    }
  })();
  assert.ok(error instanceof ConfigError);
  const names = error.problems.map((p) => p.split(":")[0]).sort();
  assert.deepEqual(names, [
    "APNS_KEY, APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC",
    "JWT_SECRET",
    "PORT",
    "PUSH_WEBHOOK_URL, PUSH_WEBHOOK_SECRET",
    "VAPID_PUBLIC_KEY, VAPID_PRIVATE_KEY",
  ]);
  // With every variable valid on its own, the numeric rule is checked as well.
  assert.throws(
    () => loadConfig({ ...production, PRESENCE_HEARTBEAT_MS: "20000", PRESENCE_TTL_MS: "10000" }),
    /PRESENCE_TTL_MS: must be greater/,
  );
});

test("Redis namespace and cluster: defaults, and every conflicting setting listed at start", () => {
  const single = loadConfig(production);
  assert.equal(single.REDIS_PREFIX, "chat");
  assert.deepEqual(single.REDIS_CLUSTER_NODES, []);
  assert.equal(single.PUSH_QUEUE_PREFIX, "chat-push", "the queue's name from before REDIS_PREFIX");
  const nodes = "10.0.0.1:7000,10.0.0.2:7000";
  const cluster = loadConfig({ ...production, REDIS_URL: "", REDIS_CLUSTER_NODES: nodes, REDIS_PREFIX: "eu" });
  assert.deepEqual(cluster.REDIS_CLUSTER_NODES, ["10.0.0.1:7000", "10.0.0.2:7000"]);
  assert.equal(cluster.PUSH_QUEUE_PREFIX, "{eu-push}", "hash-tagged on a cluster");

  const problems = (env: Record<string, string>) => {
    try {
      loadConfig({ ...production, ...env });
    } catch (err) {
      if (err instanceof ConfigError) return err.problems.map((p) => p.split(":")[0]);
      throw err;
    }
    return [];
  };
  assert.deepEqual(problems({ REDIS_CLUSTER_NODES: nodes, REDIS_ADAPTER: "classic", PUSH_QUEUE_PREFIX: "q" }), [
    "REDIS_URL, REDIS_CLUSTER_NODES",
    "REDIS_ADAPTER",
    "PUSH_QUEUE_PREFIX",
  ]);
  assert.deepEqual(problems({ REDIS_URL: "", REDIS_CLUSTER_NODES: "10.0.0.1", REDIS_PREFIX: "a:b" }).sort(), [
    "REDIS_CLUSTER_NODES",
    "REDIS_PREFIX",
  ]);
  assert.deepEqual(problems({ REDIS_URL: "", REDIS_CLUSTER_NODES: nodes, PUSH_QUEUE_PREFIX: "{q}" }), []);
});

test("REDIS_CLUSTER_NODES takes host:port or redis:// entries with AUTH, refuses TLS, and never echoes a password", () => {
  const parsed = parseClusterNodes(["redis://:s3cret@10.0.0.1:7000", "10.0.0.2:7000"]);
  assert.deepEqual(parsed, {
    nodes: [
      { host: "10.0.0.1", port: 7000 },
      { host: "10.0.0.2", port: 7000 },
    ],
    password: "s3cret",
  });
  assert.match(String(parseClusterNodes(["rediss://10.0.0.1:7000"])), /TLS/);
  const bad = String(parseClusterNodes(["redis://:s3cret@10.0.0.1:7000/2", "nohost"]));
  assert.match(bad, /bad: 10\.0\.0\.1:7000 \(with credentials\), nohost/);
  assert.doesNotMatch(bad, /s3cret/);
});

test("DATABASE_READ_URL goes with DATABASE_URL; the embedded database refuses it with a clear message", () => {
  assert.equal(
    loadConfig({ ...production, DATABASE_READ_URL: "postgresql://postgres@127.0.0.1:5433/test" }).DATABASE_READ_URL,
    "postgresql://postgres@127.0.0.1:5433/test",
  );
  assert.equal(loadConfig(production).DATABASE_READ_URL, undefined);
  assert.throws(
    () => loadConfig({ JWT_SECRET: "x".repeat(32), DATABASE_READ_URL: "postgresql://postgres@127.0.0.1:5433/test" }),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.problems.includes("DATABASE_READ_URL: needs DATABASE_URL (the embedded database has no replicas)"),
  );
});
