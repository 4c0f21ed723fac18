// Access tokens: short-lived HS256 JWTs with the algorithm pinned and iss/aud/exp required.
// Service tokens (role "service") are signed with separate secrets, so a leaked user-token secret cannot mint them:
// each service key (SERVICE_KEYS, named by the JWT header `kid`) may only post as the sender names it is bound to,
// and a service token must carry `iat` and `exp` no further apart than SERVICE_TOKEN_MAX_TTL_S. The legacy
// SERVICE_JWT_SECRET verifies tokens without a `kid`, for any name.
import { createSecretKey, type KeyObject, randomUUID } from "node:crypto";
import jwt from "jsonwebtoken";
import { unauthorized } from "../errors.js";

const ALGORITHMS: jwt.Algorithm[] = ["HS256"];

export interface AccessClaims {
  /** The user id. */
  userId: string;
  /** The login (refresh family) this token belongs to; absent for service tokens. */
  sessionId: string | undefined;
  /** Expiry, epoch seconds. */
  exp: number;
  /** Issued at, epoch seconds (absent only in hand-made service tokens of the legacy key). */
  iat?: number | undefined;
  /** "admin": a service token for the moderation API, signed by a key marked admin in SERVICE_KEYS. */
  role: "user" | "service" | "admin";
  /** The service key that signed a service token ("legacy" for SERVICE_JWT_SECRET); absent for user tokens. */
  keyId?: string | undefined;
}

export interface ServiceKeySettings {
  kid: string;
  secret: string;
  names: string[];
  /** May sign `role: "admin"` tokens. @default false */
  admin?: boolean | undefined;
}

/** The rate-limit and log name of the legacy SERVICE_JWT_SECRET key (configured kids are prefixed, so never equal). */
export const LEGACY_SERVICE_KEY = "legacy";
/** How far in the future a service token's `iat` may be (clock skew between hosts), seconds. */
const IAT_SKEW_S = 60;

interface ServiceKeyEntry {
  key: KeyObject;
  /** undefined: any name (the legacy key). */
  names: Set<string> | undefined;
  id: string;
  /** May sign admin tokens; never the legacy key. */
  admin: boolean;
}

export interface TokenSettings {
  secret: string;
  /** Legacy: verifies service tokens without a `kid`, for any name. */
  serviceSecret?: string | undefined;
  serviceKeys?: ServiceKeySettings[] | undefined;
  /** Longest `exp - iat` of a service token, seconds. @default 3600 */
  serviceMaxTtlSeconds?: number | undefined;
  issuer: string;
  audience: string;
  ttlSeconds: number;
}

export class AccessTokens {
  // Key objects made once: given a string, jsonwebtoken first tries (and fails) to parse it as a public key on
  // every call, which showed in CPU profiles of the handshake and of every HTTP request.
  private readonly key: KeyObject;
  private readonly legacyServiceKey: ServiceKeyEntry | undefined;
  private readonly serviceKeys = new Map<string, ServiceKeyEntry>();

  constructor(private readonly settings: TokenSettings) {
    this.key = createSecretKey(Buffer.from(settings.secret, "utf8"));
    this.legacyServiceKey =
      settings.serviceSecret === undefined
        ? undefined
        : {
            key: createSecretKey(Buffer.from(settings.serviceSecret, "utf8")),
            names: undefined,
            id: LEGACY_SERVICE_KEY,
            admin: false,
          };
    for (const k of settings.serviceKeys ?? []) {
      this.serviceKeys.set(k.kid, {
        key: createSecretKey(Buffer.from(k.secret, "utf8")),
        names: new Set(k.names),
        id: `kid:${k.kid}`,
        admin: k.admin === true,
      });
    }
  }

  get ttlSeconds(): number {
    return this.settings.ttlSeconds;
  }

  sign(userId: string, sessionId: string): { token: string; exp: number } {
    const token = jwt.sign({ sid: sessionId }, this.key, {
      algorithm: "HS256",
      subject: userId,
      issuer: this.settings.issuer,
      audience: this.settings.audience,
      expiresIn: this.settings.ttlSeconds,
      jwtid: randomUUID(),
    });
    const { exp } = jwt.decode(token) as { exp: number };
    return { token, exp };
  }

  /** Verifies a user or service token; any failure is `unauthorized` with no detail on which check failed. */
  verify(token: unknown): AccessClaims {
    if (typeof token !== "string" || token.length === 0 || token.length > 4096) throw unauthorized();
    const decoded = jwt.decode(token, { complete: true });
    const payload = decoded !== null && typeof decoded.payload === "object" ? decoded.payload : null;
    const isAdmin = payload?.role === "admin";
    const isService = payload?.role === "service" || isAdmin;
    let service: ServiceKeyEntry | undefined;
    if (isService) {
      const kid = decoded?.header.kid;
      service = kid === undefined ? this.legacyServiceKey : this.serviceKeys.get(kid);
    }
    const secret = isService ? service?.key : this.key;
    if (secret === undefined) throw unauthorized();
    let claims: jwt.JwtPayload;
    try {
      claims = jwt.verify(token, secret, {
        algorithms: ALGORITHMS,
        issuer: this.settings.issuer,
        audience: this.settings.audience,
      }) as jwt.JwtPayload;
    } catch {
      throw unauthorized("invalid or expired token");
    }
    if (typeof claims.sub !== "string" || typeof claims.exp !== "number") throw unauthorized("invalid token");
    if (!isService && typeof claims.sid !== "string") throw unauthorized("invalid token");
    if (service !== undefined) {
      // A service token is short-lived by construction: issued-at and expiry both present, not too far apart, and
      // not issued in the future (which would stretch its life past the cap).
      const maxTtl = this.settings.serviceMaxTtlSeconds ?? 3600;
      const iat = claims.iat;
      if (typeof iat !== "number" || claims.exp - iat > maxTtl || iat > Date.now() / 1000 + IAT_SKEW_S) {
        throw unauthorized("invalid token");
      }
      if (service.names !== undefined && !service.names.has(claims.sub)) throw unauthorized("invalid token");
      // The admin role is bound to the key like the names are: a plain service key cannot mint it.
      if (isAdmin && !service.admin) throw unauthorized("invalid token");
    }
    return {
      userId: claims.sub,
      sessionId: isService ? undefined : (claims.sid as string),
      exp: claims.exp,
      iat: claims.iat,
      role: isAdmin ? "admin" : isService ? "service" : "user",
      keyId: service?.id,
    };
  }
}
