// Accounts and logins: register, login, rotating refresh tokens with reuse detection, logout.
// A login is a refresh family; every refresh spends the presented token and issues the next one in the family, both
// in one statement (one transaction), so a refresh is either wholly done or not at all.
//
// A lost answer must not log the user out: for REFRESH_REUSE_GRACE_S after a token was spent, presenting it again
// (the client's retry, or a second tab racing the first) answers the SAME successor refresh token, with a fresh
// access token, and the family stays valid. The successor is never stored: it is derived, an HMAC of the presented
// token under a server key, and only its sha256 is kept (as its own row and as the spent row's successor_hash), so
// the retry re-derives it and checks the hash. Outside that window, or once the successor has itself been spent,
// presenting a spent token means it was copied: the whole family is revoked and its live sockets are disconnected.
import { createHash, createHmac, randomBytes, randomUUID } from "node:crypto";
import type { Db, Sql } from "../db/client.js";
import { isUuid } from "../chat/ports.js";
import { conflict, forbidden, isUniqueViolation, unauthorized } from "../errors.js";
import type { AuthResult, PublicUser } from "@chat-gateway/protocol";
import type { AccessTokens } from "./access-tokens.js";
import { burnPasswordCheck, hashPassword, verifyPassword } from "./passwords.js";

export interface RegisterInput {
  username: string;
  password: string;
  displayName?: string | undefined;
}
export interface LoginInput {
  username: string;
  password: string;
  deviceName?: string | undefined;
}

/** Called when a login is revoked, so the transport can disconnect that login's sockets; sessionId null means every
 * socket of the user (own logins and external tokens alike). */
export type SessionRevokedListener = (
  userId: string,
  sessionId: string | null,
  reason: "logged_out" | "revoked",
) => void;

const sha256 = (token: string) => createHash("sha256").update(token).digest("hex");

export interface RefreshSettings {
  /** Refresh token lifetime, seconds. */
  ttlSeconds: number;
  /** How long a spent token still answers its successor (a retried or concurrent refresh), seconds; 0: never. */
  reuseGraceSeconds: number;
  /** Server key the successor of a refresh token is derived with (HMAC-SHA256 of the presented token). */
  successorKey: Buffer;
}

/** The successor key derived from the access-token secret, so no further secret has to be configured. */
export function refreshSuccessorKey(jwtSecret: string): Buffer {
  return createHmac("sha256", jwtSecret).update("chat-gateway refresh successor v1").digest();
}

interface RotatedRow {
  family_id: string;
  user_id: string;
  username: string;
  display_name: string;
}

interface PresentedRow extends RotatedRow {
  revoked: boolean;
  live: boolean;
  spent: boolean;
  in_grace: boolean;
  successor_hash: string | null;
  successor_live: boolean | null;
}

export class Accounts {
  private readonly revokedListeners: SessionRevokedListener[] = [];

  constructor(
    private readonly db: Db,
    private readonly tokens: AccessTokens,
    private readonly refreshSettings: RefreshSettings,
    /** Raw SQL for the check every handshake and HTTP call makes (a reconnect storm is thousands a second). */
    private readonly sql: Sql = (text, params) => db.$queryRawUnsafe(text, ...params),
  ) {}

  onSessionRevoked(listener: SessionRevokedListener): void {
    this.revokedListeners.push(listener);
  }

  async register(input: RegisterInput): Promise<AuthResult> {
    const id = randomUUID();
    const passwordHash = await hashPassword(input.password);
    try {
      const user = await this.db.user.create({
        data: { id, username: input.username, displayName: input.displayName ?? input.username, passwordHash },
      });
      return this.startSession(toPublicUser(user), undefined);
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict("username is taken");
      throw err;
    }
  }

  async login(input: LoginInput): Promise<AuthResult> {
    const user = await this.db.user.findUnique({ where: { username: input.username } });
    // System accounts, accounts of an external identity and deleted accounts have no password to log in with.
    if (user === null || user.isSystem || user.passwordHash === null) {
      await burnPasswordCheck(input.password);
      throw unauthorized("wrong username or password");
    }
    if (!(await verifyPassword(user.passwordHash, input.password))) throw unauthorized("wrong username or password");
    // Only after the password: a guesser must not learn that an account exists and is suspended.
    if (user.suspendedAt !== null) throw forbidden("this account is suspended");
    return this.startSession(toPublicUser(user), input.deviceName);
  }

  async refresh(refreshToken: string): Promise<AuthResult> {
    const tokenHash = sha256(refreshToken);
    const successor = this.successorOf(refreshToken);
    const successorHash = sha256(successor);
    // Spend and issue in one statement: the UPDATE spends the token only if nobody has (a concurrent refresh with
    // the same token waits for this row's lock, then finds it spent and takes the grace path below), and the INSERT
    // issues its successor. Either both happen or neither does.
    const rotated = await this.sql<RotatedRow>(
      `WITH spent AS (
         UPDATE refresh_tokens t SET spent_at = now(), successor_hash = $2
         FROM refresh_families f
         WHERE t.token_hash = $1 AND t.spent_at IS NULL AND t.expires_at > now()
           AND f.id = t.family_id AND f.revoked_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM users su WHERE su.id = f.user_id AND su.suspended_at IS NOT NULL)
         RETURNING t.family_id, f.user_id
       ), issued AS (
         INSERT INTO refresh_tokens (token_hash, family_id, expires_at)
         SELECT $2, family_id, now() + $3::int * interval '1 second' FROM spent
         RETURNING family_id
       )
       SELECT s.family_id::text AS family_id, u.id::text AS user_id, u.username, u.display_name
       FROM issued i JOIN spent s ON s.family_id = i.family_id JOIN users u ON u.id = s.user_id`,
      [tokenHash, successorHash, this.refreshSettings.ttlSeconds],
    );
    const row = rotated[0];
    if (row !== undefined) return this.answer(row, successor);

    const presented = (
      await this.sql<PresentedRow>(
        `SELECT t.family_id::text AS family_id, f.user_id::text AS user_id, u.username, u.display_name,
                f.revoked_at IS NOT NULL AS revoked, t.expires_at > now() AS live, t.spent_at IS NOT NULL AS spent,
                COALESCE(t.spent_at > now() - $2::int * interval '1 second', false) AS in_grace, t.successor_hash,
                s.spent_at IS NULL AND s.expires_at > now() AS successor_live
         FROM refresh_tokens t
         JOIN refresh_families f ON f.id = t.family_id
         JOIN users u ON u.id = f.user_id
         LEFT JOIN refresh_tokens s ON s.token_hash = t.successor_hash
         WHERE t.token_hash = $1`,
        [tokenHash, this.refreshSettings.reuseGraceSeconds],
      )
    )[0];
    if (presented === undefined || presented.revoked) throw unauthorized("invalid refresh token");
    if (!presented.live) throw unauthorized("refresh token expired");
    if (!presented.spent) throw unauthorized("invalid refresh token");
    // Spent a moment ago and its successor not used yet: a retry after a lost answer, or a concurrent refresh.
    // Answer the same successor; nothing changes in the database, so any number of retries agree.
    if (presented.in_grace && presented.successor_hash === successorHash && presented.successor_live === true) {
      return this.answer(presented, successor);
    }
    await this.revokeFamily(presented.user_id, presented.family_id, "revoked");
    throw unauthorized("refresh token reuse detected; this login is revoked");
  }

  /** The login (refresh family id) a refresh token belongs to, spent or not; undefined for an unknown token. */
  async familyOf(refreshToken: string): Promise<string | undefined> {
    const rows = await this.sql<{ family_id: string }>(
      "SELECT family_id::text AS family_id FROM refresh_tokens WHERE token_hash = $1",
      [sha256(refreshToken)],
    );
    return rows[0]?.family_id;
  }

  /** Revokes the login the refresh token belongs to. Unknown tokens are ignored: logout is idempotent. */
  async logout(refreshToken: string): Promise<void> {
    const row = await this.db.refreshToken.findUnique({
      where: { tokenHash: sha256(refreshToken) },
      include: { family: true },
    });
    if (row === null || row.family.revokedAt !== null) return;
    await this.revokeFamily(row.family.userId, row.familyId, "logged_out");
  }

  /**
   * True while the login exists, is not revoked and its user is not suspended; checked on every connection and HTTP
   * call. The suspension is read here too (a primary-key join), so a login that raced a suspension is refused as well.
   */
  async isSessionActive(sessionId: string): Promise<boolean> {
    if (!isUuid(sessionId)) return false;
    const rows = await this.sql<{ active: boolean }>(
      `SELECT f.revoked_at IS NULL AND u.suspended_at IS NULL AS active
         FROM refresh_families f JOIN users u ON u.id = f.user_id WHERE f.id = $1::uuid`,
      [sessionId],
      { prepare: "session-active-unsuspended" },
    );
    return rows[0]?.active === true;
  }

  async getUser(userId: string): Promise<PublicUser | null> {
    const user = await this.db.user.findUnique({ where: { id: userId } });
    return user === null ? null : toPublicUser(user);
  }

  /**
   * Revokes every login of the user and every external token issued until now (`sessions_revoked_at`): suspension
   * and account deletion. Answers how many logins were still active. Ending the live sockets is the caller's, with
   * its own reason (announceAllSessionsEnded, or the suspension's `suspended`).
   */
  async revokeAllSessions(userId: string): Promise<number> {
    const rows = await this.sql<{ revoked: number }>(
      `WITH families AS (
         UPDATE refresh_families SET revoked_at = now() WHERE user_id = $1::uuid AND revoked_at IS NULL RETURNING 1
       ), stamped AS (
         UPDATE users SET sessions_revoked_at = now() WHERE id = $1::uuid
       )
       SELECT count(*)::int AS revoked FROM families`,
      [userId],
    );
    return rows[0]?.revoked ?? 0;
  }

  /** Ends every live socket of the user on every pod (after its sessions were revoked in the database). */
  announceAllSessionsEnded(userId: string): void {
    for (const listener of this.revokedListeners) listener(userId, null, "revoked");
  }

  private async revokeFamily(userId: string, familyId: string, reason: "logged_out" | "revoked"): Promise<void> {
    await this.db.refreshFamily.updateMany({
      where: { id: familyId, revokedAt: null },
      data: { revokedAt: new Date() },
    });
    for (const listener of this.revokedListeners) listener(userId, familyId, reason);
  }

  private async startSession(user: PublicUser, deviceName: string | undefined): Promise<AuthResult> {
    const family = await this.db.refreshFamily.create({
      data: { id: randomUUID(), userId: user.id, deviceName: deviceName ?? null },
    });
    return this.issuePair(user, family.id);
  }

  private async issuePair(user: PublicUser, familyId: string): Promise<AuthResult> {
    const refreshToken = randomBytes(32).toString("base64url");
    await this.db.refreshToken.create({
      data: {
        tokenHash: sha256(refreshToken),
        familyId,
        expiresAt: new Date(Date.now() + this.refreshSettings.ttlSeconds * 1000),
      },
    });
    const access = this.tokens.sign(user.id, familyId);
    return { user, accessToken: access.token, refreshToken, expiresIn: this.tokens.ttlSeconds };
  }

  /** The refresh token a token rotates into: the same string every time, unguessable without the server key. */
  private successorOf(refreshToken: string): string {
    return createHmac("sha256", this.refreshSettings.successorKey).update(refreshToken).digest("base64url");
  }

  /** A refresh answer: the (already stored) successor refresh token and a fresh access token of that login. */
  private answer(row: RotatedRow, refreshToken: string): AuthResult {
    const user = toPublicUser({ id: row.user_id, username: row.username, displayName: row.display_name });
    const access = this.tokens.sign(user.id, row.family_id);
    return { user, accessToken: access.token, refreshToken, expiresIn: this.tokens.ttlSeconds };
  }
}

export function toPublicUser(user: { id: string; username: string; displayName: string }): PublicUser {
  return { id: user.id, username: user.username, displayName: user.displayName };
}
