// Browser origin allowlist, shared by HTTP CORS and the Socket.IO handshake. WebSocket upgrades are not covered by
// CORS at all, so the handshake must check Origin itself. Requests with no Origin (native apps, servers) pass:
// CORS protects browsers' users, and every request still needs a valid token.
import type { IncomingMessage } from "node:http";

export interface OriginPolicy {
  /** Whether a browser at `origin` may call this gateway, which is reached at `host`. */
  allows(origin: string | undefined, host: string | undefined): boolean;
}

export function originPolicy(allowlist: readonly string[]): OriginPolicy {
  const allowed = new Set(allowlist.map((o) => o.replace(/\/$/, "").toLowerCase()));
  return {
    allows(origin, host) {
      if (origin === undefined) return true;
      const normalized = origin.toLowerCase();
      if (allowed.has(normalized)) return true;
      // The gateway's own origin always: the page it serves, and native WebSocket stacks (Starscream under
      // socket.io-client-swift) that send the URL's own origin. A same-origin request is never cross-site.
      if (host !== undefined) {
        try {
          return new URL(normalized).host === host.toLowerCase();
        } catch {
          return false;
        }
      }
      return false;
    },
  };
}

export function requestOrigin(req: IncomingMessage): { origin: string | undefined; host: string | undefined } {
  const origin = req.headers.origin;
  return { origin: typeof origin === "string" ? origin : undefined, host: req.headers.host };
}
