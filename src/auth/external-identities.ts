// Gateway users of external identities: the provider's `sub`, per issuer, maps to one gateway user, created the first
// time a valid token of that identity is seen. The username comes from `preferred_username` (or `username`) or the
// email's local part when that is a valid, free username, else it is generated; the display name from `name`.
//
// Session revocation for these tokens: they have no login (refresh family) to revoke, so a user's
// `sessions_revoked_at` refuses every external token issued (`iat`) at or before it. A deleted account's identity is
// unlinked and remembered only as a hash of its subject with the deletion time, so a token issued before the
// deletion cannot create the account again, while a fresh sign-in later starts a new, empty account.
import { createHash, randomBytes, randomUUID } from "node:crypto";
import {
  displayName as displayNameSchema,
  noControlCharacters,
  username as usernameSchema,
} from "@chat-gateway/protocol/schemas";
import type { Db, Sql } from "../db/client.js";
import { isUniqueViolation, unauthorized } from "../errors.js";
import type { ExternalClaims } from "./external-tokens.js";

/** sha256 of the subject: what is kept of an erased identity. */
export const subjectHash = (subject: string): string => createHash("sha256").update(subject, "utf8").digest("hex");

const MAX_USERNAME = 32;
const CREATE_ATTEMPTS = 4;

interface IdentityRow {
  user_id: string;
  /** Epoch ms, or null. */
  revoked_at_ms: number | null;
  suspended: boolean;
}

export class ExternalIdentities {
  constructor(
    private readonly db: Db,
    private readonly sql: Sql,
  ) {}

  /** The gateway user of a verified external token, created on first sight; `unauthorized` when it is revoked. */
  async userFor(claims: ExternalClaims): Promise<string> {
    const known = await this.find(claims);
    if (known !== undefined) return this.checkNotRevoked(known, claims);
    await this.refuseErased(claims);
    for (let attempt = 0; attempt < CREATE_ATTEMPTS; attempt += 1) {
      const userId = await this.tryCreate(claims, usernameCandidate(claims, attempt));
      if (userId !== undefined) return userId;
      // A unique violation: another pod created this identity at the same moment, or the username is taken.
      const created = await this.find(claims);
      if (created !== undefined) return this.checkNotRevoked(created, claims);
    }
    throw new Error("could not create a user for an external identity");
  }

  private async find(claims: ExternalClaims): Promise<IdentityRow | undefined> {
    const rows = await this.sql<IdentityRow>(
      `SELECT e.user_id::text AS user_id,
              (extract(epoch FROM u.sessions_revoked_at) * 1000)::float8 AS revoked_at_ms,
              u.suspended_at IS NOT NULL AS suspended
       FROM external_identities e JOIN users u ON u.id = e.user_id
       WHERE e.issuer = $1 AND e.subject = $2`,
      [claims.issuer, claims.subject],
      { prepare: "external-identity-suspended" },
    );
    return rows[0];
  }

  private checkNotRevoked(row: IdentityRow, claims: ExternalClaims): string {
    // A suspended account's provider keeps issuing tokens: the suspension refuses them all, whenever issued.
    if (row.suspended) throw unauthorized("account suspended");
    if (row.revoked_at_ms !== null && claims.iat * 1000 <= row.revoked_at_ms) throw unauthorized("session revoked");
    return row.user_id;
  }

  private async refuseErased(claims: ExternalClaims): Promise<void> {
    const erased = await this.db.erasedIdentity.findUnique({
      where: { issuer_subjectHash: { issuer: claims.issuer, subjectHash: subjectHash(claims.subject) } },
    });
    if (erased !== null && claims.iat * 1000 <= erased.erasedAt.getTime()) throw unauthorized("account deleted");
  }

  /** The new user's id, or undefined on a unique violation (identity or username). */
  private async tryCreate(claims: ExternalClaims, username: string): Promise<string | undefined> {
    const id = randomUUID();
    try {
      await this.db.user.create({
        data: {
          id,
          username,
          displayName: displayNameFrom(claims.name, username),
          passwordHash: null,
          externalIdentity: { create: { issuer: claims.issuer, subject: claims.subject } },
        },
      });
      return id;
    } catch (err) {
      if (isUniqueViolation(err)) return undefined;
      throw err;
    }
  }
}

/** A valid username from the claims on the first attempt, the same with a random suffix next, then a generated one. */
export function usernameCandidate(
  claims: Pick<ExternalClaims, "preferredUsername" | "email">,
  attempt: number,
): string {
  const base = [claims.preferredUsername, claims.email?.split("@")[0]]
    .map((c) => (c === undefined ? undefined : validUsername(c)))
    .find((c) => c !== undefined);
  const suffix = randomBytes(3).toString("hex");
  if (base !== undefined && attempt === 0) return base;
  if (base !== undefined && attempt < CREATE_ATTEMPTS - 1) return `${base.slice(0, MAX_USERNAME - 7)}-${suffix}`;
  return `user-${randomBytes(6).toString("hex")}`;
}

function validUsername(candidate: string): string | undefined {
  const parsed = usernameSchema.safeParse(candidate);
  return parsed.success ? parsed.data : undefined;
}

/** The `name` claim when it is valid display-name text, else the username. */
export function displayNameFrom(name: string | undefined, fallback: string): string {
  if (name === undefined || !noControlCharacters(name)) return fallback;
  const parsed = displayNameSchema.safeParse([...name.trim()].slice(0, 64).join(""));
  return parsed.success ? parsed.data : fallback;
}
