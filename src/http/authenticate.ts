// Bearer-token authentication for HTTP calls: the same token checks as the socket handshake.
import type { FastifyRequest } from "fastify";
import type { Authentication } from "../auth/authentication.js";
import { unauthorized } from "../errors.js";
import type { RateLimiters } from "../limits/rate-limits.js";

export interface Caller {
  userId: string;
  /** The login of an own token; null for external and service tokens. */
  sessionId: string | null;
  role: "user" | "service" | "admin";
  /** The token's `iat`, epoch seconds (account deletion wants a fresh one). */
  issuedAt: number | undefined;
  /** A token of the external identity provider (JWT_JWKS_URL). */
  external: boolean;
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

export function authenticator(deps: { auth: Authentication; limits: RateLimiters }) {
  return async function authenticate(request: FastifyRequest): Promise<void> {
    const principal = await deps.auth.principal(bearerToken(request));
    if (principal.role === "user") {
      await deps.limits.http.consume(principal.userId);
      request.caller = {
        userId: principal.userId,
        sessionId: principal.sessionId,
        role: "user",
        issuedAt: principal.iat,
        external: principal.external,
      };
    } else {
      // Per service key, across pods: a leaked or runaway service cannot flood conversations.
      await deps.limits.service.consume(principal.keyId);
      request.caller = {
        userId: principal.userId,
        sessionId: null,
        role: principal.role,
        issuedAt: undefined,
        external: false,
        keyId: principal.keyId,
      };
    }
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

/**
 * preValidation hook of the routes that refuse a service token before looking at their input (as `userOf` first
 * thing in the handler did before the routes validated with schemas): a service token with a bad body is still
 * `unauthorized`, not `bad_request`.
 */
export async function requireUser(request: FastifyRequest): Promise<void> {
  userOf(request);
}
