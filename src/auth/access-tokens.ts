// Access tokens: short-lived HS256 JWTs with the algorithm pinned and iss/aud/exp required.
// Service tokens (role "service") are signed with a separate secret, so a leaked user-token secret cannot mint them.
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
  role: "user" | "service";
}

export interface TokenSettings {
  secret: string;
  serviceSecret?: string | undefined;
  issuer: string;
  audience: string;
  ttlSeconds: number;
}

export class AccessTokens {
  // Key objects made once: given a string, jsonwebtoken first tries (and fails) to parse it as a public key on
  // every call, which showed in CPU profiles of the handshake and of every HTTP request.
  private readonly key: KeyObject;
  private readonly serviceKey: KeyObject | undefined;

  constructor(private readonly settings: TokenSettings) {
    this.key = createSecretKey(Buffer.from(settings.secret, "utf8"));
    this.serviceKey =
      settings.serviceSecret === undefined ? undefined : createSecretKey(Buffer.from(settings.serviceSecret, "utf8"));
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
    const decoded = jwt.decode(token, { json: true });
    const isService = decoded?.role === "service";
    const secret = isService ? this.serviceKey : this.key;
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
    return {
      userId: claims.sub,
      sessionId: isService ? undefined : (claims.sid as string),
      exp: claims.exp,
      role: isService ? "service" : "user",
    };
  }
}
