// Who is calling: one check of a bearer token for HTTP calls, the socket handshake and `auth:refresh` alike.
// A token is routed by its (unverified) issuer to exactly one verifier: the provider's (JWT_JWKS_URL, asymmetric
// algorithms, its JWKS) or the gateway's own (HS256, JWT_SECRET). So an external token never verifies against the
// HS256 secret and an own token never against the JWKS; a forged `iss` only picks the verifier that refuses it.
// Then the session check: an own token's login (refresh family) must be active; an external token's user must not have
// had its sessions revoked after the token was issued.
import type { Config } from "../config.js";
import type { Db, Sql } from "../db/client.js";
import { unauthorized } from "../errors.js";
import type { AccessTokens } from "./access-tokens.js";
import type { Accounts } from "./accounts.js";
import { ExternalIdentities } from "./external-identities.js";
import type { ExternalTokens } from "./external-tokens.js";

export interface UserPrincipal {
  role: "user";
  userId: string;
  /** The login (refresh family) of an own token; null for an external token, which has none. */
  sessionId: string | null;
  /** Expiry and issue time, epoch seconds. */
  exp: number;
  iat: number | undefined;
  /** From the external identity provider. */
  external: boolean;
}

export interface ServicePrincipal {
  /** "admin": a service token for the moderation API, signed by a key marked admin. */
  role: "service" | "admin";
  userId: string;
  exp: number;
  /** The service key that signed it, for rate limits. */
  keyId: string;
}

export type Principal = UserPrincipal | ServicePrincipal;

export class Authentication {
  constructor(
    private readonly own: AccessTokens,
    private readonly accounts: Accounts,
    private readonly external: { tokens: ExternalTokens; identities: ExternalIdentities } | undefined,
  ) {}

  /** A user or service token, verified, its session active; otherwise `unauthorized` (`unavailable` when the
   * provider's keys or the database cannot be reached). */
  async principal(token: unknown): Promise<Principal> {
    if (this.external !== undefined && typeof token === "string" && this.external.tokens.claimsIssuer(token)) {
      const claims = await this.external.tokens.verify(token);
      const userId = await this.external.identities.userFor(claims);
      return { role: "user", userId, sessionId: null, exp: claims.exp, iat: claims.iat, external: true };
    }
    const claims = this.own.verify(token);
    if (claims.role === "service" || claims.role === "admin") {
      return { role: claims.role, userId: claims.userId, exp: claims.exp, keyId: claims.keyId ?? "legacy" };
    }
    if (claims.sessionId === undefined || !(await this.accounts.isSessionActive(claims.sessionId))) {
      throw unauthorized("session revoked");
    }
    return {
      role: "user",
      userId: claims.userId,
      sessionId: claims.sessionId,
      exp: claims.exp,
      iat: claims.iat,
      external: false,
    };
  }

  /** Like principal, for the places only users may enter (sockets). */
  async user(token: unknown): Promise<UserPrincipal> {
    const principal = await this.principal(token);
    if (principal.role !== "user") throw unauthorized("a user token is required");
    return principal;
  }
}

/**
 * The gateway's authentication from its configuration: own tokens, plus the provider's when JWT_JWKS_URL is set.
 * jose is loaded only then: a pod without an external provider does not hold it.
 */
export async function createAuthentication(
  config: Readonly<Config>,
  deps: { db: Db; sql: Sql; tokens: AccessTokens; accounts: Accounts },
): Promise<Authentication> {
  const external =
    config.JWT_JWKS_URL === undefined
      ? undefined
      : {
          tokens: new (await import("./external-tokens.js")).ExternalTokens({
            jwksUrl: config.JWT_JWKS_URL,
            issuer: config.JWT_JWKS_ISSUER!,
            audience: config.JWT_JWKS_AUDIENCE!,
            algorithms: config.JWT_JWKS_ALGORITHMS,
            cooldownMs: config.JWT_JWKS_COOLDOWN_MS,
            cacheMaxAgeMs: config.JWT_JWKS_CACHE_MAX_AGE_MS,
            timeoutMs: config.JWT_JWKS_TIMEOUT_MS,
          }),
          identities: new ExternalIdentities(deps.db, deps.sql),
        };
  return new Authentication(deps.tokens, deps.accounts, external);
}
