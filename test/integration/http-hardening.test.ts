// HTTP hardening: security headers on the page and the API, DATA_DIR kept owner-only, a short kept JWT secret
// replaced, and expired refresh tokens deleted by the periodic job while live ones stay.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { loadConfig } from "../../src/config.js";
import type { AuthResult } from "@chat-gateway/protocol";
import { api, eventually, registerUser } from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

describe("HTTP hardening", () => {
  let cluster: Cluster;
  let url: string;
  let db: pg.Client;
  before(async () => {
    cluster = await startGateways(1, { adapter: "memory", env: { REFRESH_TOKEN_CLEANUP_MS: "300" } });
    url = cluster.urls[0]!;
    db = new pg.Client({ connectionString: cluster.databaseUrl });
    await db.connect();
  });
  after(async () => {
    await db?.end();
    await cluster?.cleanup();
  });

  test("security headers on the page, the API and errors", async () => {
    for (const path of ["/", "/v1/users/me", "/v1/auth/login", "/healthz"]) {
      const res = await fetch(`${url}${path}`, path === "/v1/auth/login" ? { method: "POST" } : {});
      const csp = res.headers.get("content-security-policy") ?? "";
      assert.match(csp, /default-src 'self'/, path);
      assert.match(csp, /script-src 'self'(;|$)/, path);
      assert.match(csp, /frame-ancestors 'none'/, path);
      assert.match(csp, /object-src 'none'/, path);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
      assert.equal(res.headers.get("x-content-type-options"), "nosniff", path);
      assert.equal(res.headers.get("referrer-policy"), "no-referrer", path);
      assert.equal(res.headers.get("x-frame-options"), "DENY", path);
      await res.arrayBuffer();
    }
  });

  test("the cleanup job deletes expired refresh tokens in batches and keeps live ones", async () => {
    const live = await registerUser(url);
    const old = await registerUser(url);
    await db.query("UPDATE refresh_tokens SET expires_at = now() - interval '1 minute' WHERE token_hash = $1", [
      sha256(old.refreshToken),
    ]);
    // More than one batch of expired rows (1000 per statement), in the old user's family.
    const { rows } = await db.query<{ family_id: string }>(
      "SELECT family_id FROM refresh_tokens WHERE token_hash = $1",
      [sha256(old.refreshToken)],
    );
    await db.query(
      `INSERT INTO refresh_tokens (token_hash, family_id, expires_at)
       SELECT md5(random()::text || g::text), $1, now() - interval '1 day' FROM generate_series(1, 2500) g`,
      [rows[0]!.family_id],
    );
    await eventually(
      async () => {
        const r = await db.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM refresh_tokens WHERE expires_at < now()",
        );
        return r.rows[0]!.n === 0;
      },
      15_000,
      "expired tokens deleted",
    );
    const kept = await db.query("SELECT 1 FROM refresh_tokens WHERE token_hash = $1", [sha256(live.refreshToken)]);
    assert.equal(kept.rowCount, 1);
    const refreshed = await api<AuthResult>(url, "POST", "/v1/auth/refresh", {
      body: { refreshToken: live.refreshToken },
    });
    assert.equal(refreshed.status, 200);
    const expired = await api(url, "POST", "/v1/auth/refresh", { body: { refreshToken: old.refreshToken } });
    assert.equal(expired.status, 401);
  });
});

describe("DATA_DIR and the embedded JWT secret", () => {
  const root = mkdtempSync(join(tmpdir(), "gw-datadir-"));
  after(() => rmSync(root, { recursive: true, force: true }));

  test("DATA_DIR is created owner-only (0700), and a group/world-readable one is tightened", () => {
    const fresh = join(root, "fresh", "data");
    loadConfig({ DATA_DIR: fresh });
    assert.equal(statSync(fresh).mode & 0o777, 0o700);
    const loose = join(root, "loose");
    mkdirSync(loose, { mode: 0o755 });
    const config = loadConfig({ DATA_DIR: loose });
    assert.equal(statSync(loose).mode & 0o777, 0o700);
    assert.ok(
      config.warnings.some((w) => w.includes("changed to 700")),
      config.warnings.join("; "),
    );
    assert.equal(statSync(join(loose, "jwt-secret")).mode & 0o777, 0o600);
  });

  test("a kept secret shorter than 32 characters is replaced, a good one is kept", () => {
    const dir = join(root, "short");
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, "jwt-secret"), "too-short", { mode: 0o600 });
    const config = loadConfig({ DATA_DIR: dir });
    assert.ok(config.JWT_SECRET.length >= 32);
    assert.notEqual(config.JWT_SECRET, "too-short");
    assert.equal(readFileSync(join(dir, "jwt-secret"), "utf8").trim(), config.JWT_SECRET);
    assert.ok(
      config.warnings.some((w) => w.includes("shorter than 32")),
      config.warnings.join("; "),
    );
    assert.equal(loadConfig({ DATA_DIR: dir }).JWT_SECRET, config.JWT_SECRET, "kept across restarts");
  });
});
