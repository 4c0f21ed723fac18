// The settings of an external identity provider go together and never admit a symmetric algorithm; usernames and
// display names taken from a provider's claims are valid or replaced.
import assert from "node:assert/strict";
import { test } from "node:test";
import { displayNameFrom, usernameCandidate } from "../../src/auth/external-identities.js";
import { ConfigError, loadConfig } from "../../src/config.js";

const production = {
  DATABASE_URL: "postgresql://postgres@127.0.0.1:5432/test",
  REDIS_URL: "redis://127.0.0.1:6379",
  JWT_SECRET: "x".repeat(32),
};
const provider = {
  JWT_JWKS_URL: "https://idp.example.com/.well-known/jwks.json",
  JWT_JWKS_ISSUER: "https://idp.example.com/",
  JWT_JWKS_AUDIENCE: "chat-api",
};

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig({ ...production, ...env });
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  return [];
}

test("defaults: own accounts on, no provider, RS256 and ES256 pinned, tombstones", () => {
  const config = loadConfig({ ...production, ...provider });
  assert.equal(config.OWN_ACCOUNTS, true);
  assert.deepEqual(config.JWT_JWKS_ALGORITHMS, ["RS256", "ES256"]);
  assert.equal(config.JWT_JWKS_COOLDOWN_MS, 30_000);
  assert.equal(config.ACCOUNT_DELETION_MESSAGES, "tombstone");
  assert.equal(config.ACCOUNT_DELETION_MAX_TOKEN_AGE_S, 300);
  assert.equal(loadConfig(production).JWT_JWKS_URL, undefined);
});

test("a provider needs its issuer and audience, an issuer of its own, and asymmetric algorithms only", () => {
  assert.match(problems({ JWT_JWKS_URL: provider.JWT_JWKS_URL }).join("\n"), /JWT_JWKS_ISSUER.*\n.*JWT_JWKS_AUDIENCE/);
  assert.match(problems({ ...provider, JWT_JWKS_ISSUER: "chat-gateway" }).join(), /must differ from JWT_ISSUER/);
  assert.match(problems({ JWT_JWKS_ISSUER: "x", JWT_JWKS_AUDIENCE: "y" }).join(), /JWT_JWKS_URL/);
  for (const algorithms of ["HS256", "RS256,none", ""]) {
    assert.match(problems({ ...provider, JWT_JWKS_ALGORITHMS: algorithms || " " }).join(), /JWT_JWKS_ALGORITHMS/);
  }
  for (const url of ["ftp://idp.example.com/keys", "http://idp.example.com/keys", "not a url"]) {
    assert.match(problems({ ...provider, JWT_JWKS_URL: url }).join(), /JWT_JWKS_URL/);
  }
  assert.deepEqual(problems({ ...provider, JWT_JWKS_URL: "http://127.0.0.1:8080/jwks.json" }), []);
});

test("OWN_ACCOUNTS=off needs a provider", () => {
  assert.match(problems({ OWN_ACCOUNTS: "off" }).join(), /OWN_ACCOUNTS/);
  assert.deepEqual(problems({ OWN_ACCOUNTS: "off", ...provider }), []);
});

test("usernames from claims: valid ones kept, then suffixed, else generated", () => {
  assert.equal(usernameCandidate({ preferredUsername: "Ada.L", email: undefined }, 0), "ada.l");
  assert.equal(usernameCandidate({ preferredUsername: undefined, email: "grace@example.com" }, 0), "grace");
  assert.match(usernameCandidate({ preferredUsername: "ada", email: undefined }, 1), /^ada-[0-9a-f]{6}$/);
  assert.match(usernameCandidate({ preferredUsername: "a".repeat(32), email: undefined }, 2), /^a{25}-[0-9a-f]{6}$/);
  assert.match(usernameCandidate({ preferredUsername: "ada", email: undefined }, 3), /^user-[0-9a-f]{12}$/);
  assert.match(usernameCandidate({ preferredUsername: "no spaces", email: "x@y" }, 0), /^user-[0-9a-f]{12}$/);
});

test("display names from claims: text kept (cut to 64), control characters refused", () => {
  assert.equal(displayNameFrom("  Ada Lovelace ", "ada"), "Ada Lovelace");
  assert.equal(displayNameFrom("x".repeat(100), "ada"), "x".repeat(64));
  assert.equal(displayNameFrom("bad\u0007name", "ada"), "ada");
  assert.equal(displayNameFrom(undefined, "ada"), "ada");
});
