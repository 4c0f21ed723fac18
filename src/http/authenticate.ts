// Bearer-token authentication for HTTP calls: the same token checks as the socket handshake.
import type { FastifyRequest } from "fastify";
import type { AccessTokens } from "../auth/access-tokens.js";
import type { Accounts } from "../auth/accounts.js";
import { unauthorized } from "../errors.js";
import type { RateLimiters } from "../limits/rate-limits.js";

export interface Caller {
  userId: string;
  sessionId: string | undefined;
  role: "user" | "service" | "admin";
  /** The service key of a service or admin token (audit records name it); absent for users. */
  keyId?: string | undefined;
}

declare module "fastify" {
  interface FastifyRequest {
    caller: Caller | null;
  }
}

export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== "string") return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match?.[1];
}

export function authenticator(deps: { tokens: AccessTokens; accounts: Accounts; limits: RateLimiters }) {
  return async function authenticate(request: FastifyRequest): Promise<void> {
    const claims = deps.tokens.verify(bearerToken(request));
    if (claims.role === "user") {
      if (claims.sessionId === undefined || !(await deps.accounts.isSessionActive(claims.sessionId))) {
        throw unauthorized("session revoked");
      }
      await deps.limits.http.consume(claims.userId);
    } else {
      // Per service key, across pods: a leaked or runaway service cannot flood conversations.
      await deps.limits.service.consume(claims.keyId ?? "legacy");
    }
    request.caller = { userId: claims.userId, sessionId: claims.sessionId, role: claims.role, keyId: claims.keyId };
  };
}

/** The authenticated caller of a route registered behind `authenticate`. */
export function callerOf(request: FastifyRequest): Caller {
  if (request.caller === null) throw unauthorized();
  return request.caller;
}

/** The calling user; service tokens may only use the routes that say they accept them. */
export function userOf(request: FastifyRequest): string {
  const caller = callerOf(request);
  if (caller.role !== "user") throw unauthorized("a user token is required");
  return caller.userId;
}
