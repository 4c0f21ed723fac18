// METRICS_PORT: a real gateway process (src/main.ts) serves /metrics, /healthz and /readyz on its internal port, and
// its public port answers /metrics with 404 while keeping the health routes; unset, everything stays on PORT.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ConfigError, loadConfig } from "../../src/config.js";
import { type GatewayProcess, spawnGateway } from "../helpers/gateways.js";
import { startInProcessGateway } from "../helpers/in-process.js";

let gateway: GatewayProcess;
let internal: string;
const dataDir = mkdtempSync(join(tmpdir(), "chat-operations-"));

before(async () => {
  // Embedded PGlite: the routes under test do not depend on which database answers /readyz.
  gateway = await spawnGateway({ METRICS_PORT: "0", DATA_DIR: dataDir, LOG_FORMAT: "json", LOG_LEVEL: "info" });
  const line = gateway.logs.find((l) => l.includes('"operations listening"'));
  assert.ok(line, "no `operations listening` log line");
  const port = (JSON.parse(line) as { port: number }).port;
  assert.ok(port > 0 && port !== gateway.port);
  internal = `http://127.0.0.1:${port}`;
});

after(async () => {
  await gateway?.stop("SIGTERM");
  rmSync(dataDir, { recursive: true, force: true });
});

test("with METRICS_PORT, /metrics is served on the internal port only", async () => {
  const metrics = await fetch(`${internal}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(metrics.headers.get("content-type") ?? "", /^text\/plain/);
  assert.match(await metrics.text(), /^# HELP /m);

  const publicMetrics = await fetch(`${gateway.url}/metrics`);
  assert.equal(publicMetrics.status, 404);
  assert.equal(((await publicMetrics.json()) as { error: { code: string } }).error.code, "not_found");
});

test("with METRICS_PORT, both ports answer /healthz and /readyz; the internal one serves nothing else", async () => {
  for (const base of [internal, gateway.url]) {
    assert.equal((await fetch(`${base}/healthz`)).status, 200, `${base}/healthz`);
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200, `${base}/readyz`);
    assert.equal(((await ready.json()) as { ready: boolean }).ready, true);
  }
  for (const path of ["/v1/auth/login", "/", "/socket.io/?EIO=4&transport=polling"]) {
    assert.equal((await fetch(`${internal}${path}`)).status, 404, path);
  }
});

test("the drain closes the internal port too, and the process exits cleanly", async () => {
  assert.equal(await gateway.stop("SIGTERM"), 0);
  await assert.rejects(fetch(`${internal}/healthz`));
});

test("without METRICS_PORT, /metrics stays on the main port and no operations server exists", async () => {
  const g = await startInProcessGateway();
  try {
    assert.equal(g.gateway.operations, undefined);
    const res = await fetch(`${g.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^# HELP /m);
  } finally {
    await g.close();
  }
});

test("METRICS_PORT must differ from PORT", () => {
  assert.throws(
    () => loadConfig({ PORT: "3000", METRICS_PORT: "3000" }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.ok(err.problems.some((p) => p.startsWith("METRICS_PORT:")));
      return true;
    },
  );
  assert.equal(loadConfig({ PORT: "3000", METRICS_PORT: "9090", DATA_DIR: dataDir }).METRICS_PORT, 9090);
});
