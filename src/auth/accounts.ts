// Accounts and logins: register, login, rotating refresh tokens with reuse detection, logout.
// A login is a refresh family; every refresh spends the presented token and issues the next one in the family.
// Presenting a spent token means it was copied: the whole family is revoked and its live sockets are disconnected.
import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { Db, Sql } from "../db/client.js";
import { isUuid } from "../chat/ports.js";
import { conflict, isUniqueViolation, unauthorized } from "../errors.js";
import type { AuthResult, PublicUser } from "../protocol/types.js";
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

/** Called when a login is revoked, so the transport can disconnect that login's sockets. */
export type SessionRevokedListener = (userId: string, sessionId: string, reason: "logged_out" | "revoked") => void;

const sha256 = (token: string) => createHash("sha256").update(token).digest("hex");

export class Accounts {
  private readonly revokedListeners: SessionRevokedListener[] = [];

  constructor(
    private readonly db: Db,
    private readonly tokens: AccessTokens,
    private readonly refreshTtlSeconds: number,
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
    if (user === null || user.isSystem) {
      await burnPasswordCheck(input.password);
      throw unauthorized("wrong username or password");
    }
    if (!(await verifyPassword(user.passwordHash, input.password))) throw unauthorized("wrong username or password");
    return this.startSession(toPublicUser(user), input.deviceName);
  }

  async refresh(refreshToken: string): Promise<AuthResult> {
    const tokenHash = sha256(refreshToken);
    const row = await this.db.refreshToken.findUnique({
      where: { tokenHash },
      include: { family: { include: { user: true } } },
    });
    if (row === null || row.family.revokedAt !== null) throw unauthorized("invalid refresh token");
    if (row.expiresAt.getTime() <= Date.now()) throw unauthorized("refresh token expired");

    // Spend it only if nobody else has: two concurrent refreshes with one token are a reuse, not a race to win.
    const spent = await this.db.refreshToken.updateMany({
      where: { tokenHash, spentAt: null },
      data: { spentAt: new Date() },
    });
    if (spent.count === 0) {
      await this.revokeFamily(row.family.userId, row.familyId, "revoked");
      throw unauthorized("refresh token reuse detected; this login is revoked");
    }
    return this.issuePair(toPublicUser(row.family.user), row.familyId);
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

  /** True while the login exists and is not revoked; checked on every connection and HTTP call. */
  async isSessionActive(sessionId: string): Promise<boolean> {
    if (!isUuid(sessionId)) return false;
    const rows = await this.sql<{ active: boolean }>(
      "SELECT revoked_at IS NULL AS active FROM refresh_families WHERE id = $1::uuid",
      [sessionId],
      { prepare: "session-active" },
    );
    return rows[0]?.active === true;
  }

  async getUser(userId: string): Promise<PublicUser | null> {
    const user = await this.db.user.findUnique({ where: { id: userId } });
    return user === null ? null : toPublicUser(user);
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
        expiresAt: new Date(Date.now() + this.refreshTtlSeconds * 1000),
      },
    });
    const access = this.tokens.sign(user.id, familyId);
    return { user, accessToken: access.token, refreshToken, expiresIn: this.tokens.ttlSeconds };
  }
}

export function toPublicUser(user: { id: string; username: string; displayName: string }): PublicUser {
  return { id: user.id, username: user.username, displayName: user.displayName };
}
