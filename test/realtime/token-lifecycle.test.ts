// A socket never outlives its access token or its login: with 6-second tokens, a refreshed socket stays connected
// past the first token's expiry, an unrefreshed one is ended at expiry, and logout or refresh-token reuse ends that
// login's sockets on another pod while other logins of the same user stay connected.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { AuthResult } from "@chat-gateway/protocol";
import {
  api,
  collect,
  connectDevice,
  type Device,
  registerUser,
  request,
  uniqueName,
  waitForEvent,
} from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";

const TTL_SECONDS = 6;
const PASSWORD = "correct horse battery";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function expiryOf(accessToken: string): number {
  const payload = JSON.parse(Buffer.from(accessToken.split(".")[1]!, "base64url").toString()) as { exp: number };
  return payload.exp * 1000;
}

function disconnected(socket: Device, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    if (socket.disconnected) return resolve(Date.now());
    const timer = setTimeout(() => reject(new Error("socket was not disconnected")), timeoutMs);
    socket.once("disconnect", () => {
      clearTimeout(timer);
      resolve(Date.now());
    });
  });
}

describe("access token and login lifecycle on live sockets", () => {
  let cluster: Cluster;
  const devices: Device[] = [];
  before(async () => {
    // No grace period for a retried refresh (REFRESH_REUSE_GRACE_S=0): any reuse of a spent refresh token revokes.
    cluster = await startGateways(2, {
      adapter: "sharded",
      env: { ACCESS_TOKEN_TTL: String(TTL_SECONDS), REFRESH_REUSE_GRACE_S: "0" },
    });
  });
  after(async () => {
    for (const d of devices) d.close();
    await cluster.cleanup();
  });

  const connect = async (url: string, token: string) => {
    const device = await connectDevice(url, token);
    devices.push(device);
    return device;
  };
  const login = async (url: string, username: string) => {
    const res = await api<AuthResult>(url, "POST", "/v1/auth/login", { body: { username, password: PASSWORD } });
    assert.equal(res.status, 200);
    return res.body;
  };

  test("auth:expiring, then auth:refresh with a refreshed token keeps the socket past the first expiry", async () => {
    const [u0, u1] = cluster.urls as [string, string];
    const user = await registerUser(u0);
    const device = await connect(u1, user.accessToken);
    const ended = collect(device, "session:ended");
    const firstExp = expiryOf(user.accessToken);

    const warning = await waitForEvent(device, "auth:expiring", () => true, TTL_SECONDS * 1000 + 5_000);
    assert.equal(Date.parse(warning.expiresAt), firstExp);
    assert.ok(Date.now() < firstExp, "the warning comes before expiry");

    const refreshed = await api<AuthResult>(u0, "POST", "/v1/auth/refresh", {
      body: { refreshToken: user.refreshToken },
    });
    assert.equal(refreshed.status, 200);
    const answer = await request(device, "auth:refresh", {
      token: refreshed.body.accessToken,
    });
    assert.equal(answer.ok, true, JSON.stringify(answer));
    assert.equal(Date.parse(answer.expiresAt), expiryOf(refreshed.body.accessToken));
    assert.ok(Date.parse(answer.expiresAt) > firstExp);

    await sleep(Math.max(0, firstExp - Date.now()) + 1_500);
    assert.equal(device.connected, true, "still connected after the first token expired");
    assert.deepEqual(ended, []);
    const sync = await request(device, "sync", { cursors: {} });
    assert.equal(sync.ok, true, "and still served");
  });

  test("a socket that does not refresh is ended at expiry with token_expired", async () => {
    const [u0] = cluster.urls as [string];
    const user = await registerUser(u0);
    const device = await connect(u0, user.accessToken);
    const exp = expiryOf(user.accessToken);
    const ended = waitForEvent(device, "session:ended", () => true, TTL_SECONDS * 1000 + 5_000);
    const gone = disconnected(device, TTL_SECONDS * 1000 + 5_000);
    assert.deepEqual(await ended, { reason: "token_expired" });
    const at = await gone;
    assert.ok(at >= exp - 50, `disconnected ${exp - at} ms before expiry`);
    await assert.rejects(connectDevice(u0, user.accessToken), /unauthorized/);
  });

  test("auth:refresh with another login's token is refused", async () => {
    const [u0] = cluster.urls as [string];
    const username = uniqueName();
    const first = await registerUser(u0, username);
    const second = await login(u0, username);
    const device = await connect(u0, first.accessToken);
    const answer = await request(device, "auth:refresh", {
      token: second.accessToken,
    });
    assert.equal(answer.ok, false);
    assert.equal(answer.error?.code, "unauthorized");
  });

  test("logout ends that login's sockets on another pod, not a second login's", async () => {
    const [u0, u1] = cluster.urls as [string, string];
    const username = uniqueName();
    const first = await registerUser(u0, username);
    const second = await login(u0, username);
    const firstDevices = [await connect(u1, first.accessToken), await connect(u0, first.accessToken)];
    const secondDevice = await connect(u1, second.accessToken);
    const secondEnded = collect(secondDevice, "session:ended");

    const endings = firstDevices.map((d) => waitForEvent(d, "session:ended", () => true, 5_000));
    const gone = firstDevices.map((d) => disconnected(d, 5_000));
    const res = await api(u0, "POST", "/v1/auth/logout", { body: { refreshToken: first.refreshToken } });
    assert.equal(res.status, 204);
    assert.deepEqual(await Promise.all(endings), [{ reason: "logged_out" }, { reason: "logged_out" }]);
    await Promise.all(gone);

    await sleep(300);
    assert.equal(secondDevice.connected, true);
    assert.deepEqual(secondEnded, []);
    // The logged-out login's still-unexpired access token no longer opens a socket; its refresh token is dead.
    await assert.rejects(connectDevice(u1, first.accessToken), /unauthorized/);
    const refresh = await api(u1, "POST", "/v1/auth/refresh", { body: { refreshToken: first.refreshToken } });
    assert.equal(refresh.status, 401);
  });

  test("reusing a spent refresh token revokes the login (401) and ends its sockets", async () => {
    const [u0, u1] = cluster.urls as [string, string];
    const username = uniqueName();
    const bystander = await registerUser(u0, username);
    const victim = await login(u0, username);
    const device = await connect(u1, victim.accessToken);
    const other = await connect(u1, bystander.accessToken);

    const rotated = await api<AuthResult>(u0, "POST", "/v1/auth/refresh", {
      body: { refreshToken: victim.refreshToken },
    });
    assert.equal(rotated.status, 200);
    const ended = waitForEvent(device, "session:ended", () => true, 5_000);
    const gone = disconnected(device, 5_000);
    const reuse = await api(u0, "POST", "/v1/auth/refresh", { body: { refreshToken: victim.refreshToken } });
    assert.equal(reuse.status, 401);
    assert.deepEqual(await ended, { reason: "revoked" });
    await gone;

    // The whole family is dead, the rotated pair included; the user's other login is untouched.
    const next = await api(u0, "POST", "/v1/auth/refresh", { body: { refreshToken: rotated.body.refreshToken } });
    assert.equal(next.status, 401);
    await assert.rejects(connectDevice(u0, rotated.body.accessToken), /unauthorized/);
    assert.equal(other.connected, true);
  });
});
