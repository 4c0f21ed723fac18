// A socket must not outlive its access token. Shortly before `exp` the socket gets `auth:expiring`; a valid
// `auth:refresh` (same user, same login) moves the deadline; otherwise it is disconnected at `exp` with a reason.
// One timer per socket at a time (the warning's, then the expiry's), with callbacks shared by every socket.
import type { UserPrincipal } from "../auth/authentication.js";
import { AuthRefreshPayload } from "@chat-gateway/protocol/schemas";
import { unauthorized } from "../errors.js";
import type { EventRouter } from "./handlers.js";
import { userRoom } from "@chat-gateway/protocol";
import type { GatewayServer, GatewaySocket, SocketData } from "./socket-server.js";

/** How long before expiry the warning goes out: a minute, or a quarter of a short token's life. */
export function warningLeadMs(ttlSeconds: number): number {
  return Math.min(60_000, Math.max(1_000, (ttlSeconds * 1000) / 4));
}

export interface SessionLifetime {
  /** Starts the socket's clock from its token's `exp`. */
  watch(socket: GatewaySocket): void;
  /** Stops it (on disconnect). */
  forget(socket: GatewaySocket): void;
}

export function manageSessionLifetime(
  router: EventRouter,
  deps: {
    /** Own access tokens' lifetime, seconds: sets how early `auth:expiring` goes out. */
    ttlSeconds: number;
    /** Verifies a user token and its session (Authentication.user). */
    authenticateUser: (token: unknown) => Promise<UserPrincipal>;
  },
): SessionLifetime {
  // Not in socket.data: that is shared with other pods (fetchSockets) and must stay plain data.
  const timers = new WeakMap<GatewaySocket, NodeJS.Timeout>();
  const lead = warningLeadMs(deps.ttlSeconds);

  const expire = (socket: GatewaySocket) => endSession(socket, "token_expired");
  const warn = (socket: GatewaySocket) => {
    socket.emit("auth:expiring", { expiresAt: new Date(socket.data.exp * 1000).toISOString() });
    timers.set(socket, setTimeout(expire, Math.max(0, socket.data.exp * 1000 - Date.now()), socket));
  };
  const watch = (socket: GatewaySocket) => {
    clearTimeout(timers.get(socket));
    const msLeft = socket.data.exp * 1000 - Date.now();
    timers.set(socket, setTimeout(warn, Math.max(0, msLeft - lead), socket));
  };

  router.on("auth:refresh", AuthRefreshPayload, async (socket, { token }) => {
    // Verified with its session: an own token's login active, an external token's user not revoked since.
    const claims = await deps.authenticateUser(token);
    if (claims.userId !== socket.data.userId) throw unauthorized("token belongs to another user");
    // Another login's token would let this socket outlive its own login's logout or revocation. External tokens
    // (sessionId null) have no login: any fresh one of the same user extends the socket.
    if (claims.sessionId !== socket.data.sessionId) throw unauthorized("token belongs to another login");
    socket.data.exp = Math.max(socket.data.exp, claims.exp);
    if (socket.connected) watch(socket);
    return { expiresAt: new Date(socket.data.exp * 1000).toISOString() };
  });

  return {
    watch,
    forget(socket) {
      clearTimeout(timers.get(socket));
      timers.delete(socket);
    },
  };
}

/** Tells the client why, then disconnects; the SDK reads the reason to decide between refresh and sign-out. */
export function endSession(
  socket: { emit: GatewaySocket["emit"]; disconnect(close?: boolean): unknown },
  reason: SessionEndReason,
): void {
  socket.emit("session:ended", { reason });
  socket.disconnect(true);
}

export type SessionEndReason =
  "token_expired" | "logged_out" | "revoked" | "draining" | "too_many_sockets" | "suspended";

/**
 * Ends the user's sockets that `which` picks, on every pod (one fetchSockets round: a request to every pod), each
 * told why first. Rejects when the other pods did not answer in time.
 */
export async function endUserSockets(
  server: GatewayServer,
  userId: string,
  reason: SessionEndReason,
  which: (socket: { data: SocketData }) => boolean,
): Promise<void> {
  const sockets = await server.in(userRoom(userId)).fetchSockets();
  for (const s of sockets) if (which(s)) endSession(s, reason);
}
