import assert from "node:assert/strict";
import { test } from "node:test";
import { ChatApiError } from "../../packages/sdk/src/errors.js";
import { jwtExpiresAt } from "../../packages/sdk/src/jwt.js";
import {
  type AuthTokens,
  refreshDelayMs,
  type SignedOutReason,
  TokenManager,
  type TokenManagerOptions,
} from "../../packages/sdk/src/token-manager.js";
import { FakeClock, settle } from "./fake-clock.js";

function jwt(claims: object): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}.signature`;
}

/** A refresh endpoint stand-in that rotates pairs like the contract says (numbered, so tests can tell them apart). */
function rotatingRefresh(expiresIn = 900) {
  const presented: string[] = [];
  let n = 0;
  const refreshTokens = async (refreshToken: string): Promise<AuthTokens> => {
    presented.push(refreshToken);
    n += 1;
    return { accessToken: `access-${n}`, refreshToken: `refresh-${n}`, expiresIn };
  };
  return { presented, refreshTokens };
}

function manager(overrides: Partial<TokenManagerOptions> = {}) {
  const clock = new FakeClock();
  const accessTokens: string[] = [];
  const pairs: AuthTokens[] = [];
  const signedOut: SignedOutReason[] = [];
  const tm = new TokenManager({
    source: { accessToken: "access-0", refreshToken: "refresh-0", expiresIn: 900 },
    onAccessToken: (t) => accessTokens.push(t),
    onTokens: (t) => pairs.push(t),
    onSignedOut: (reason) => signedOut.push(reason),
    random: () => 0.5,
    clock,
    ...overrides,
  });
  return { tm, clock, accessTokens, pairs, signedOut };
}

test("a token is refreshed with 30% of its life left, at most 90 s early", () => {
  assert.equal(refreshDelayMs(900_000), 810_000);
  assert.equal(refreshDelayMs(20_000), 14_000);
  assert.equal(refreshDelayMs(0), 0);
  assert.equal(refreshDelayMs(-5), 0);
});

test("the SDK refreshes before expiry, rotates the refresh token and tells the app", async () => {
  const { presented, refreshTokens } = rotatingRefresh();
  const { tm, clock, accessTokens, pairs } = manager({ refreshTokens });
  assert.equal(await tm.getAccessToken(), "access-0");
  await clock.advance(809_999);
  assert.deepEqual(presented, []);
  await clock.advance(1);
  assert.deepEqual(presented, ["refresh-0"]);
  assert.deepEqual(accessTokens, ["access-1"]);
  assert.deepEqual(pairs, [{ accessToken: "access-1", refreshToken: "refresh-1", expiresIn: 900 }]);
  assert.equal(await tm.getAccessToken(), "access-1");
  assert.equal(tm.currentRefreshToken, "refresh-1");
  // And again 13.5 minutes later, with the rotated token.
  await clock.advance(810_000);
  assert.deepEqual(presented, ["refresh-0", "refresh-1"]);
  tm.close();
});

test("concurrent refreshes share one request: a spent refresh token must never be presented twice", async () => {
  const { presented, refreshTokens } = rotatingRefresh();
  const { tm } = manager({ refreshTokens });
  const results = await Promise.all([tm.refresh(), tm.refresh(), tm.getAccessToken(), tm.refresh()]);
  assert.deepEqual(results, ["access-1", "access-1", "access-1", "access-1"]);
  assert.deepEqual(presented, ["refresh-0"]);
  tm.close();
});

test("a token about to expire is refreshed before it is handed out", async () => {
  const { presented, refreshTokens } = rotatingRefresh();
  const { tm } = manager({ refreshTokens, source: { accessToken: "old", refreshToken: "r", expiresIn: 3 } });
  assert.equal(await tm.getAccessToken(), "access-1");
  assert.deepEqual(presented, ["r"]);
  tm.close();
});

test("a refused refresh signs out once, and no token is handed out afterwards", async () => {
  const refreshTokens = async (): Promise<AuthTokens> => {
    throw new ChatApiError("unauthorized", "refresh token reused", { status: 401 });
  };
  const { tm, signedOut, clock } = manager({ refreshTokens });
  await assert.rejects(tm.refresh(), { code: "unauthorized" });
  await assert.rejects(tm.refresh(), { code: "unauthorized" });
  await assert.rejects(tm.getAccessToken(), { code: "unauthorized" });
  assert.deepEqual(signedOut, ["unauthorized"]);
  assert.equal(tm.signedOut, "unauthorized");
  assert.equal(clock.pendingTimers(), 0);
});

test("while the gateway cannot be reached, refresh keeps retrying with backoff", async () => {
  let failing = true;
  const attempts: number[] = [];
  const { refreshTokens: rotate } = rotatingRefresh();
  const { tm, clock, signedOut } = manager({
    refreshTokens: async (token) => {
      attempts.push(clock.now());
      if (failing) throw new ChatApiError("network_error", "offline");
      return rotate(token);
    },
  });
  await clock.advance(810_000);
  assert.equal(attempts.length, 1);
  assert.equal(await tm.getAccessToken(), "access-0", "the old token is still valid");
  await clock.advance(375); // first backoff with random 0.5
  assert.equal(attempts.length, 2);
  failing = false;
  await clock.advance(750);
  assert.equal(attempts.length, 3);
  await settle();
  assert.equal(await tm.getAccessToken(), "access-1");
  assert.deepEqual(signedOut, []);
  tm.close();
});

test("an app's own token provider: expiry read from the JWT, refreshed through the app", async () => {
  const clock = new FakeClock();
  const nowSeconds = Math.floor(clock.now() / 1000);
  let current = jwt({ sub: "u1", exp: nowSeconds + 100 });
  let refreshes = 0;
  const tm = new TokenManager({
    source: {
      getToken: async () => current,
      refresh: async () => {
        refreshes += 1;
        current = jwt({ sub: "u1", exp: nowSeconds + 1000 + refreshes });
        return current;
      },
    },
    clock,
  });
  assert.equal(await tm.getAccessToken(), current);
  assert.equal(tm.accessTokenExpiresAt, (nowSeconds + 100) * 1000);
  await clock.advance(70_000);
  assert.equal(refreshes, 1);
  tm.close();
});

test("jwtExpiresAt reads exp and tolerates what is not a JWT", () => {
  assert.equal(jwtExpiresAt(jwt({ exp: 1_800_000_000, name: "Zoë 🚀" })), 1_800_000_000_000);
  assert.equal(jwtExpiresAt(jwt({ sub: "no exp" })), undefined);
  assert.equal(jwtExpiresAt("opaque-token"), undefined);
  assert.equal(jwtExpiresAt("a.!!!.c"), undefined);
});
