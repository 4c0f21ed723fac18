// A socket must not outlive its access token. Shortly before `exp` the socket gets `auth:expiring`; a valid
// `auth:refresh` (same user, same login) moves the deadline; otherwise it is disconnected at `exp` with a reason.
import type { AccessTokens } from "../auth/access-tokens.js";
import { AuthRefreshPayload } from "../chat/schemas.js";
import { unauthorized } from "../errors.js";
import type { Handle } from "./handlers.js";
import type { GatewaySocket } from "./socket-server.js";

/** How long before expiry the warning goes out: a minute, or a quarter of a short token's life. */
export function warningLeadMs(ttlSeconds: number): number {
  return Math.min(60_000, Math.max(1_000, (ttlSeconds * 1000) / 4));
}

export function manageSessionLifetime(
  socket: GatewaySocket,
  handle: Handle,
  deps: { tokens: AccessTokens; isSessionActive: (sessionId: string) => Promise<boolean> },
): void {
  let warnTimer: NodeJS.Timeout | undefined;
  let expireTimer: NodeJS.Timeout | undefined;

  const schedule = () => {
    clearTimeout(warnTimer);
    clearTimeout(expireTimer);
    const msLeft = socket.data.exp * 1000 - Date.now();
    const lead = warningLeadMs(deps.tokens.ttlSeconds);
    warnTimer = setTimeout(
      () => socket.emit("auth:expiring", { expiresAt: new Date(socket.data.exp * 1000).toISOString() }),
      Math.max(0, msLeft - lead),
    );
    expireTimer = setTimeout(() => endSession(socket, "token_expired"), Math.max(0, msLeft));
  };
  schedule();
  socket.on("disconnect", () => {
    clearTimeout(warnTimer);
    clearTimeout(expireTimer);
  });

  handle("auth:refresh", AuthRefreshPayload, async ({ token }) => {
    const claims = deps.tokens.verify(token);
    if (claims.role !== "user" || claims.userId !== socket.data.userId) {
      throw unauthorized("token belongs to another user");
    }
    // Another login's token would let this socket outlive its own login's logout or revocation.
    if (claims.sessionId !== socket.data.sessionId) throw unauthorized("token belongs to another login");
    if (!(await deps.isSessionActive(socket.data.sessionId))) throw unauthorized("session revoked");
    socket.data.exp = Math.max(socket.data.exp, claims.exp);
    schedule();
    return { expiresAt: new Date(socket.data.exp * 1000).toISOString() };
  });
}

/** Tells the client why, then disconnects; the SDK reads the reason to decide between refresh and sign-out. */
export function endSession(
  socket: { emit: GatewaySocket["emit"]; disconnect(close?: boolean): unknown },
  reason: "token_expired" | "logged_out" | "revoked" | "draining",
): void {
  socket.emit("session:ended", { reason });
  socket.disconnect(true);
}
