// Access tokens of an external identity provider (Auth0, Cognito, Keycloak, Firebase Auth), verified against its
// JWKS with jose. The algorithm list is pinned to asymmetric ones (RS256/ES256 by default): `none`, HS256 "signed"
// with the public key as a secret, and every other algorithm confusion fail before any key is looked at. Keys are
// cached (JWT_JWKS_CACHE_MAX_AGE_MS) and fetched again on an unknown `kid`, at most once per JWT_JWKS_COOLDOWN_MS,
// one fetch in flight at a time (jose's createRemoteJWKSet). A failed fetch is cooled down too, and keeps using the
// keys it had, so a provider outage neither floods the provider nor logs everybody out; with no keys at all the
// answer is `unavailable`.
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  errors,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyGetKey,
} from "jose";
import type { ExternalAlgorithm } from "../config.js";
import { AppError, unauthorized, unavailable } from "../errors.js";

export interface ExternalTokenSettings {
  jwksUrl: string;
  issuer: string;
  audience: string;
  algorithms: ExternalAlgorithm[];
  /** Least time between two JWKS fetches, ms. @default 30000 */
  cooldownMs: number;
  /** How long fetched keys are used before being fetched again, ms. @default 600000 */
  cacheMaxAgeMs: number;
  /** Longest a JWKS fetch may take, ms. @default 5000 */
  timeoutMs: number;
}

/** What the gateway takes from a verified external token. */
export interface ExternalClaims {
  issuer: string;
  subject: string;
  /** Epoch seconds. */
  exp: number;
  iat: number;
  /** Candidates for the username and display name of an account created on first sight. */
  preferredUsername: string | undefined;
  email: string | undefined;
  name: string | undefined;
}

/** Clock skew tolerated between the provider and the gateway, seconds. */
const CLOCK_TOLERANCE_S = 30;
/** Longest token considered at all (a JWT is header.payload.signature in base64url). */
const MAX_TOKEN_LENGTH = 8192;

export class ExternalTokens {
  private readonly remote: ReturnType<typeof createRemoteJWKSet>;
  private lastFetchFailureAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly settings: ExternalTokenSettings) {
    this.remote = createRemoteJWKSet(new URL(settings.jwksUrl), {
      cooldownDuration: settings.cooldownMs,
      cacheMaxAge: settings.cacheMaxAgeMs,
      timeoutDuration: settings.timeoutMs,
    });
  }

  get issuer(): string {
    return this.settings.issuer;
  }

  /**
   * Whether the token claims to come from the provider. Read from the unverified payload only to pick the verifier:
   * each verifier then checks the issuer itself, with its own keys and algorithms, so a forged `iss` just picks the
   * verifier that refuses it.
   */
  claimsIssuer(token: string): boolean {
    try {
      return decodeJwt(token).iss === this.settings.issuer;
    } catch {
      return false;
    }
  }

  /** Verifies signature, algorithm, iss, aud (or client_id), exp, iat; any failure is `unauthorized`. */
  async verify(token: unknown): Promise<ExternalClaims> {
    if (typeof token !== "string" || token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw unauthorized();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys, {
        algorithms: this.settings.algorithms,
        issuer: this.settings.issuer,
        requiredClaims: ["sub", "exp", "iat"],
        clockTolerance: CLOCK_TOLERANCE_S,
      }));
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw unauthorized("invalid or expired token");
    }
    if (!this.audienceMatches(payload)) throw unauthorized("invalid or expired token");
    const { sub, exp, iat } = payload;
    if (typeof sub !== "string" || sub.length === 0 || sub.length > 255) throw unauthorized("invalid token");
    if (typeof exp !== "number" || typeof iat !== "number") throw unauthorized("invalid token");
    return {
      issuer: this.settings.issuer,
      subject: sub,
      exp,
      iat,
      preferredUsername: stringClaim(payload.preferred_username) ?? stringClaim(payload.username),
      email: stringClaim(payload.email),
      name: stringClaim(payload.name),
    };
  }

  /** `aud` names the gateway; a token without `aud` may name it in `client_id` instead (Cognito access tokens). */
  private audienceMatches(payload: JWTPayload): boolean {
    const expected = this.settings.audience;
    if (payload.aud === undefined) return payload.client_id === expected;
    return Array.isArray(payload.aud) ? payload.aud.includes(expected) : payload.aud === expected;
  }

  private readonly keys: JWTVerifyGetKey = async (header, token) => {
    // After a failed fetch, no new one for a cooldown: the keys already held answer, or nothing does.
    if (Date.now() - this.lastFetchFailureAt < this.settings.cooldownMs) return this.heldKeys(header, token);
    try {
      return await this.remote(header, token);
    } catch (err) {
      if (!isFetchFailure(err)) throw err;
      this.lastFetchFailureAt = Date.now();
      return this.heldKeys(header, token);
    }
  };

  private heldKeys: JWTVerifyGetKey = (header, token) => {
    const held = this.remote.jwks();
    if (held === undefined) throw unavailable("the identity provider's keys cannot be fetched");
    return createLocalJWKSet(held)(header, token);
  };
}

/** The JWKS could not be fetched or read (network, timeout, not 200, not a key set), as opposed to a bad token. */
function isFetchFailure(err: unknown): boolean {
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return true;
  if (err instanceof errors.JOSEError) return err.code === "ERR_JOSE_GENERIC";
  return err instanceof TypeError; // fetch's network errors
}

function stringClaim(value: unknown): string | undefined {
  return typeof value === "string" && value.length > 0 && value.length <= 320 ? value : undefined;
}
