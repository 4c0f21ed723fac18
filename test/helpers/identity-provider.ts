// A stand-in for an external identity provider (Auth0, Cognito, Keycloak, Firebase Auth): a JWKS served over
// node:http, keys that can be rotated, and access tokens signed with them, as the provider would issue them.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createPublicKey, randomBytes } from "node:crypto";
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from "jose";

export const IDP_ISSUER = "https://idp.example.test/";
export const IDP_AUDIENCE = "chat-api";

export interface ProviderKey {
  kid: string;
  alg: "RS256" | "ES256";
  privateKey: CryptoKey;
  publicJwk: JWK;
  /** The public key as PEM (what an algorithm-confusion attacker would use as an HMAC secret). */
  publicPem: string;
}

export interface IdentityProvider {
  /** The JWKS URL to give the gateway. */
  jwksUrl: string;
  /** How many times the JWKS was fetched. */
  fetches(): number;
  newKey(alg: "RS256" | "ES256"): Promise<ProviderKey>;
  /** While on, the JWKS answers 500 (the provider is down). */
  failing(on: boolean): void;
  /** Serves exactly these keys from now on. */
  publish(keys: ProviderKey[]): void;
  /** A token signed with `key`; `claims` override the defaults (iss, aud, sub, iat, exp in 10 minutes). */
  token(key: ProviderKey, claims?: JWTPayload): Promise<string>;
  /** The gateway env naming this provider. */
  env(extra?: Record<string, string>): Record<string, string>;
  close(): Promise<void>;
}

export async function startIdentityProvider(): Promise<IdentityProvider> {
  let published: ProviderKey[] = [];
  let fetchCount = 0;
  let down = false;
  const server: Server = createServer((req, res) => {
    if (req.url !== "/.well-known/jwks.json") {
      res.writeHead(404).end();
      return;
    }
    fetchCount += 1;
    if (down) {
      res.writeHead(500).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ keys: published.map((k) => k.publicJwk) }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const jwksUrl = `http://127.0.0.1:${port}/.well-known/jwks.json`;

  return {
    jwksUrl,
    fetches: () => fetchCount,
    async newKey(alg) {
      const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
      const kid = `${alg.toLowerCase()}-${randomBytes(4).toString("hex")}`;
      const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
      const publicPem = createPublicKey({ key: publicJwk as never, format: "jwk" })
        .export({ type: "spki", format: "pem" })
        .toString();
      return { kid, alg, privateKey, publicJwk, publicPem };
    },
    failing(on) {
      down = on;
    },
    publish(keys) {
      published = keys;
    },
    async token(key, claims = {}) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iss: IDP_ISSUER, aud: IDP_AUDIENCE, iat: now, exp: now + 600, ...claims })
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" })
        .sign(key.privateKey);
    },
    env(extra = {}) {
      return { JWT_JWKS_URL: jwksUrl, JWT_JWKS_ISSUER: IDP_ISSUER, JWT_JWKS_AUDIENCE: IDP_AUDIENCE, ...extra };
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
