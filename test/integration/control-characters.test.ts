// Every free-text field refuses control characters with `bad_request` before anything reaches the database: display
// names, device names, user searches, titles, FCM tokens and Web Push endpoints; nothing is left behind.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { api, createConversation, registerUser, uniqueName } from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";
import { type PushServices, startPushServices } from "../helpers/push.js";

// NUL (PostgreSQL refuses it), BEL, ESC, DEL, a C1 control, and a lone surrogate.
const BAD = ["\u0000", "\u0007", "\u001b", "\u007f", "\u0085", "\ud800"];

interface ErrorBody {
  error: { code: string; details?: { field: string; problem: string }[] };
}

describe("control characters in free-text fields", () => {
  let services: PushServices;
  let cluster: Cluster;
  let db: pg.Client;
  before(async () => {
    // FCM and Web Push configured, so their fields are validated rather than refused as unconfigured.
    services = await startPushServices();
    cluster = await startGateways(1, { adapter: "memory", env: services.env });
    db = new pg.Client({ connectionString: cluster.databaseUrl });
    await db.connect();
  });
  after(async () => {
    await db?.end();
    await cluster?.cleanup();
    await services?.stop();
  });

  function assertBadRequest(res: { status: number; body: ErrorBody }, what: string, field: string): void {
    assert.equal(res.status, 400, `${what}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, "bad_request", what);
    assert.ok(
      res.body.error.details?.some((d) => d.field === field),
      `${what}: names ${field} (${JSON.stringify(res.body.error.details)})`,
    );
  }

  const count = async (sql: string, params: unknown[] = []) =>
    Number((await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${sql}`, params)).rows[0]!.n);

  test("register: displayName", async () => {
    const url = cluster.urls[0]!;
    for (const c of BAD) {
      const username = uniqueName();
      const res = await api<ErrorBody>(url, "POST", "/v1/auth/register", {
        body: { username, password: "correct horse battery", displayName: `a${c}b` },
      });
      assertBadRequest(res, `displayName with U+${c.charCodeAt(0).toString(16)}`, "displayName");
      assert.equal(await count("users WHERE username = $1", [username]), 0, "no user created");
    }
  });

  test("login: deviceName", async () => {
    const url = cluster.urls[0]!;
    const user = await registerUser(url);
    const before = await count("refresh_families WHERE user_id = $1", [user.user.id]);
    for (const c of BAD) {
      const res = await api<ErrorBody>(url, "POST", "/v1/auth/login", {
        body: { username: user.user.username, password: "correct horse battery", deviceName: `phone${c}` },
      });
      assertBadRequest(res, `deviceName with U+${c.charCodeAt(0).toString(16)}`, "deviceName");
    }
    assert.equal(await count("refresh_families WHERE user_id = $1", [user.user.id]), before, "no login created");
  });

  test("user search: query", async () => {
    const url = cluster.urls[0]!;
    const user = await registerUser(url);
    // A lone surrogate cannot be written in a URL (it has no UTF-8): the others.
    for (const c of BAD.filter((b) => b !== "\ud800")) {
      const res = await api<ErrorBody>(url, "GET", `/v1/users?query=${encodeURIComponent(`ab${c}`)}`, {
        token: user.accessToken,
      });
      assertBadRequest(res, `query with U+${c.charCodeAt(0).toString(16)}`, "query");
    }
  });

  test("conversations: a group's title, on creation and on rename", async () => {
    const url = cluster.urls[0]!;
    const [owner, member] = await Promise.all([registerUser(url), registerUser(url)]);
    const group = await createConversation(url, owner.accessToken, {
      type: "group",
      title: "fine",
      memberIds: [member.user.id],
    });
    for (const c of BAD) {
      const created = await api<ErrorBody>(url, "POST", "/v1/conversations", {
        token: owner.accessToken,
        body: { type: "group", title: `t${c}`, memberIds: [member.user.id] },
      });
      assertBadRequest(created, `title with U+${c.charCodeAt(0).toString(16)}`, "title");
      const renamed = await api<ErrorBody>(url, "PATCH", `/v1/conversations/${group.id}`, {
        token: owner.accessToken,
        body: { title: `t${c}` },
      });
      assertBadRequest(renamed, `new title with U+${c.charCodeAt(0).toString(16)}`, "title");
    }
    assert.equal(await count("members WHERE user_id = $1", [owner.user.id]), 1, "no group created");
    const { rows } = await db.query<{ title: string }>("SELECT title FROM conversations WHERE id = $1", [group.id]);
    assert.equal(rows[0]!.title, "fine");
  });

  test("push subscriptions: an FCM token and a Web Push endpoint", async () => {
    const url = cluster.urls[0]!;
    const user = await registerUser(url);
    const web = services.webPush.subscribe();
    for (const c of BAD) {
      const fcm = await api<ErrorBody>(url, "POST", "/v1/push/subscriptions", {
        token: user.accessToken,
        body: { type: "fcm", token: `token${c}x` },
      });
      assertBadRequest(fcm, `FCM token with U+${c.charCodeAt(0).toString(16)}`, "token");
      const endpoint = await api<ErrorBody>(url, "POST", "/v1/push/subscriptions", {
        token: user.accessToken,
        body: { type: "webpush", endpoint: `${web.endpoint}${c}`, keys: web.keys },
      });
      assertBadRequest(endpoint, `endpoint with U+${c.charCodeAt(0).toString(16)}`, "endpoint");
    }
    assert.equal(await count("push_subscriptions WHERE user_id = $1", [user.user.id]), 0, "nothing stored");
  });
});
