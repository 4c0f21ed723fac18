// /metrics is valid Prometheus text (checked by a strict parser below) and its counters move with traffic; the
// structured logs carry request and socket ids but never a token or a message body.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  api,
  connectDevice,
  createConversation,
  type Device,
  eventually,
  registerUser,
  request,
} from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";
import { type PrivateRedis, startPrivateRedis } from "../helpers/private-redis.js";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);
const SUFFIXES: Record<string, string[]> = {
  counter: ["_total", "_created", ""],
  gauge: [""],
  untyped: [""],
  histogram: ["_bucket", "_sum", "_count", "_created"],
  summary: ["", "_sum", "_count", "_created"],
};

/** Parses the Prometheus text exposition format (0.0.4) strictly: anything malformed throws. */
export function parsePrometheusText(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const lines = text.split("\n");
  assert.equal(lines.at(-1), "", "exposition ends with a newline");
  for (const [i, line] of lines.slice(0, -1).entries()) {
    const where = `line ${i + 1}: ${line}`;
    if (line === "") continue;
    if (line.startsWith("#")) {
      const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (meta === null) continue; // a plain comment
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      assert.match(name, METRIC_NAME, where);
      if (kind === "TYPE") {
        assert.ok(TYPES.has(rest), `${where}: unknown type`);
        assert.ok(!types.has(name), `${where}: TYPE declared twice`);
        types.set(name, rest);
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/.exec(line);
    assert.ok(m, `${where}: not a sample`);
    const [, name, , labelText, valueText] = m as unknown as [
      string,
      string,
      string | undefined,
      string | undefined,
      string,
    ];
    const labels: Record<string, string> = {};
    if (labelText) {
      const pair = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/y;
      let at = 0;
      while (at < labelText.length) {
        pair.lastIndex = at;
        const p = pair.exec(labelText);
        assert.ok(p, `${where}: bad label at ${at}`);
        assert.match(p[1]!, LABEL_NAME, where);
        assert.ok(!(p[1]! in labels), `${where}: duplicate label`);
        labels[p[1]!] = p[2]!.replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
        at = pair.lastIndex;
      }
    }
    const value = valueText === "+Inf" ? Infinity : valueText === "-Inf" ? -Infinity : Number(valueText);
    // prom-client writes NaN as "Nan" (an event-loop gauge before its first sample); Prometheus parses floats with
    // Go's strconv.ParseFloat, which takes NaN in any letter case.
    assert.ok(/^nan$/i.test(valueText) || !Number.isNaN(value), `${where}: bad value`);
    const family = [...types.keys()].find((f) =>
      (SUFFIXES[types.get(f)!] ?? [""]).some((suffix) => name === f + suffix),
    );
    assert.ok(family !== undefined, `${where}: sample without a TYPE`);
    samples.push({ name, labels, value });
  }
  // Histograms: cumulative buckets ending in +Inf, which equals _count.
  for (const [family, type] of types) {
    if (type !== "histogram") continue;
    const buckets = samples.filter((s) => s.name === `${family}_bucket`);
    const series = new Map<string, Sample[]>();
    for (const b of buckets) {
      const { le: _le, ...rest } = b.labels;
      const key = JSON.stringify(rest);
      series.set(key, [...(series.get(key) ?? []), b]);
    }
    for (const [key, list] of series) {
      for (let i = 1; i < list.length; i++) assert.ok(list[i]!.value >= list[i - 1]!.value, `${family} not cumulative`);
      assert.equal(list.at(-1)!.labels.le, "+Inf", `${family} ends with +Inf`);
      const count = samples.find((s) => s.name === `${family}_count` && JSON.stringify(s.labels) === key);
      assert.equal(count?.value, list.at(-1)!.value, `${family} +Inf bucket equals _count`);
    }
  }
  return { types, samples };
}

function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return found.reduce((sum, s) => sum + s.value, 0);
}

async function scrape(url: string) {
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
  return parsePrometheusText(await res.text());
}

describe("metrics and logs", () => {
  let cluster: Cluster;
  const devices: Device[] = [];
  before(async () => {
    cluster = await startGateways(1, { adapter: "classic", env: { LOG_LEVEL: "debug" } });
  });
  after(async () => {
    for (const d of devices) d.close();
    await cluster?.cleanup();
  });

  test("/metrics is valid Prometheus text, lists every gateway metric, and counters move with traffic", async () => {
    const url = cluster.urls[0]!;
    const before = await scrape(url);
    for (const name of [
      "chat_sockets_connected",
      "chat_socket_events_total",
      "chat_send_to_ack_seconds",
      "chat_store_to_emit_seconds",
      "chat_message_writer_pending",
      "chat_messages_stored_total",
      "chat_redis_reconnects_total",
      "chat_dependency_up",
      "chat_draining",
      "chat_http_requests_total",
      "chat_db_pool_connections",
      "chat_db_pool_waiting",
      "nodejs_eventloop_lag_seconds",
      "nodejs_eventloop_lag_p99_seconds",
    ]) {
      assert.ok(before.types.has(name.replace(/_total$/, "")) || before.types.has(name), `${name} is exported`);
    }

    const alice = await registerUser(url);
    const bob = await registerUser(url);
    const conversation = await createConversation(url, alice.accessToken, { type: "direct", userId: bob.user.id });
    const device = await connectDevice(url, alice.accessToken);
    devices.push(device, await connectDevice(url, bob.accessToken));
    const sends = 7;
    for (let i = 0; i < sends; i++) {
      const ack = await request(device, "message:send", {
        conversationId: conversation.id,
        clientMsgId: `m-${i}`,
        content: `hello ${i}`,
      });
      assert.equal(ack.ok, true);
    }
    const refused = await request(device, "message:send", {
      conversationId: "00000000-0000-4000-8000-000000000000",
      clientMsgId: "nope",
      content: "nope",
    });
    assert.equal(refused.error.code, "not_found");
    assert.equal((await api(url, "GET", "/readyz")).status, 200);

    const now = await scrape(url);
    const moved = (name: string, labels: Record<string, string> = {}) =>
      valueOf(now.samples, name, labels) - valueOf(before.samples, name, labels);
    assert.equal(moved("chat_socket_events_total", { event: "message:send", outcome: "ok" }), sends);
    assert.equal(moved("chat_socket_events_total", { event: "message:send", outcome: "not_found" }), 1);
    assert.equal(moved("chat_send_to_ack_seconds_count"), sends);
    assert.equal(moved("chat_store_to_emit_seconds_count"), sends);
    assert.equal(moved("chat_messages_stored_total"), sends);
    assert.equal(moved("chat_socket_connections_total"), 2);
    assert.equal(valueOf(now.samples, "chat_sockets_connected"), 2);
    assert.ok(moved("chat_http_requests_total", { route: "/v1/auth/register", status: "201" }) >= 2);
    assert.equal(valueOf(now.samples, "chat_dependency_up", { dependency: "redis" }), 1);
    assert.equal(valueOf(now.samples, "chat_dependency_up", { dependency: "database" }), 1);
    assert.equal(valueOf(now.samples, "chat_draining"), 0);
    assert.equal(valueOf(now.samples, "chat_message_writer_pending"), 0);
    // The pool gauges are read from the live pg.Pool: after traffic it holds at least one connection.
    const pool = (state?: string) =>
      now.samples.filter(
        (s) => s.name === "chat_db_pool_connections" && (state === undefined || s.labels.state === state),
      );
    assert.deepEqual(
      pool()
        .map((s) => s.labels.state)
        .sort(),
      ["idle", "total"],
    );
    const total = pool("total")[0]!.value;
    const idle = pool("idle")[0]!.value;
    assert.ok(Number.isInteger(total) && total >= 1, `pool total ${total}`);
    assert.ok(Number.isInteger(idle) && idle >= 0 && idle <= total, `pool idle ${idle} of ${total}`);
    const waiting = now.samples.filter((s) => s.name === "chat_db_pool_waiting");
    assert.equal(waiting.length, 1);
    assert.ok(Number.isInteger(waiting[0]!.value) && waiting[0]!.value >= 0, `pool waiting ${waiting[0]!.value}`);
  });

  test("logs are JSON with request and socket ids, and never hold a token or a message body", async () => {
    const url = cluster.urls[0]!;
    const gateway = cluster.gateways[0]!;
    const marker = `secret-marker-${Math.random().toString(36).slice(2)}`;
    const alice = await registerUser(url);
    const bob = await registerUser(url);
    const conversation = await createConversation(url, alice.accessToken, { type: "direct", userId: bob.user.id });
    const device = await connectDevice(url, alice.accessToken);
    devices.push(device);
    const ack = await request(device, "message:send", {
      conversationId: conversation.id,
      clientMsgId: "log-1",
      content: `${marker} over the socket`,
    });
    assert.equal(ack.ok, true);
    const sent = await api(url, "POST", `/v1/conversations/${conversation.id}/messages`, {
      token: alice.accessToken,
      body: { clientMsgId: "log-2", content: `${marker} over HTTP` },
    });
    assert.equal(sent.status, 201);
    // Errors are logged too: a bad token and an unknown event must not leak either.
    await api(url, "GET", "/v1/conversations", { token: `${alice.accessToken}x` });
    (device as unknown as { emit(e: string, p: unknown): void }).emit("no:such:event", { token: alice.accessToken });
    await new Promise((r) => setTimeout(r, 500));

    const lines = gateway.logs.filter((l) => l.startsWith("{"));
    assert.ok(lines.length > 0);
    for (const line of lines) JSON.parse(line);
    const all = gateway.logs.join("\n");
    assert.ok(!all.includes(marker), "a message body was logged");
    assert.ok(!all.includes(alice.accessToken), "an access token was logged");
    assert.ok(!all.includes(alice.refreshToken), "a refresh token was logged");
    assert.ok(
      lines.some((l) => /"reqId":"[^"]+"/.test(l)),
      "requests are logged with reqId",
    );
    assert.ok(
      lines.some((l) => /"socketId":"[^"]+"/.test(l)),
      "socket events are logged with socketId",
    );
  });
});

describe("Redis health metrics", () => {
  let cluster: Cluster | undefined;
  let redis: PrivateRedis | undefined;
  after(async () => {
    await redis?.stop();
    await cluster?.cleanup();
  });

  test("a Redis outage shows in chat_dependency_up and chat_redis_reconnects_total", async () => {
    redis = await startPrivateRedis();
    cluster = await startGateways(1, { adapter: "classic", env: { REDIS_URL: redis.url } });
    const url = cluster.urls[0]!;
    assert.equal((await api(url, "GET", "/readyz")).status, 200);
    const before = await scrape(url);
    assert.equal(valueOf(before.samples, "chat_dependency_up", { dependency: "redis" }), 1);
    assert.equal(valueOf(before.samples, "chat_redis_reconnects_total"), 0);

    await redis.stop();
    await eventually(async () => (await api(url, "GET", "/readyz")).status === 503, 15_000, "readyz 503");
    const down = await scrape(url);
    assert.equal(valueOf(down.samples, "chat_dependency_up", { dependency: "redis" }), 0);
    assert.ok(valueOf(down.samples, "chat_redis_reconnects_total", { client: "pub" }) >= 1);
    assert.ok(valueOf(down.samples, "chat_redis_reconnects_total", { client: "sub" }) >= 1);

    await redis.start();
    await eventually(async () => (await api(url, "GET", "/readyz")).status === 200, 30_000, "readyz 200 again");
    const up = await scrape(url);
    assert.equal(valueOf(up.samples, "chat_dependency_up", { dependency: "redis" }), 1);
  });
});
