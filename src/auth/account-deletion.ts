// Account deletion (DELETE /v1/users/me), which app stores require. Proof first: the password of an own account, or,
// for an account of an external identity (no password), an access token issued within ACCOUNT_DELETION_MAX_TOKEN_AGE_S.
// Then one transaction:
//   - the profile is anonymised and kept, so the conversations of others keep a member to show: username
//     `deleted-<id>` (longer than any username can be, so never taken nor registrable), display name "Deleted user",
//     password hash removed, `deleted_at` set; memberships stay (direct and group conversations keep working);
//   - every login (refresh families and their tokens) deleted, `sessions_revoked_at` set for external tokens;
//   - the external identity link removed, its subject kept only hashed with the deletion time, so a token issued
//     before the deletion cannot create the account again;
//   - push subscriptions deleted;
//   - the user's messages become tombstones (content "", `deleted_at` set, client_msg_id replaced by the id) through
//     the change path (src/chat/sender-tombstones.ts: each takes a change number, so `sync` converges): seq stays
//     gapless for the other members, whose clients rely on "every seq below N is readable". With
//     ACCOUNT_DELETION_MESSAGES=delete, conversations nobody else is a member of are also deleted outright (with all
//     their messages): only there can rows go without leaving a gap someone sees.
// After the commit, every live socket of the user ends on every pod (`session:ended {reason: "revoked"}`), then the
// onErased listeners run (app.ts: `message:updated` with the tombstones to online members, the user's files deleted).
import { type TombstonedRange, tombstoneMessagesOf } from "../chat/sender-tombstones.js";
import type { Db } from "../db/client.js";
import { AppError, badRequest, unauthorized } from "../errors.js";
import type { Accounts } from "./accounts.js";
import { verifyPassword } from "./passwords.js";

export const DELETED_DISPLAY_NAME = "Deleted user";

/** Told after the commit: the deleted user and the change numbers their tombstones took. */
export type AccountErasedListener = (userId: string, tombstoned: TombstonedRange[]) => void;

export interface DeletionSettings {
  messages: "tombstone" | "delete";
  /** Longest age (now - iat) of the token that deletes an account without a password, seconds. */
  maxTokenAgeSeconds: number;
}

export interface DeletionProof {
  password: string | undefined;
  /** The caller's token `iat`, epoch seconds. */
  tokenIssuedAt: number | undefined;
}

type Tx = Parameters<Parameters<Db["$transaction"]>[0]>[0];

export class AccountDeletion {
  private readonly listeners: AccountErasedListener[] = [];

  constructor(
    private readonly db: Db,
    private readonly accounts: Accounts,
    private readonly settings: DeletionSettings,
  ) {}

  onErased(listener: AccountErasedListener): void {
    this.listeners.push(listener);
  }

  /** The user's name for the per-account failure limit, before checking a password. */
  async usernameOf(userId: string): Promise<string | undefined> {
    const user = await this.db.user.findUnique({ where: { id: userId }, select: { username: true } });
    return user?.username;
  }

  async deleteAccount(userId: string, proof: DeletionProof): Promise<void> {
    await this.checkProof(userId, proof);
    const tombstoned = await this.db.$transaction((tx) => this.erase(tx, userId), { maxWait: 5_000, timeout: 60_000 });
    this.accounts.announceAllSessionsEnded(userId);
    for (const listener of this.listeners) listener(userId, tombstoned);
  }

  private async checkProof(userId: string, proof: DeletionProof): Promise<void> {
    const user = await this.db.user.findUnique({
      where: { id: userId },
      select: { passwordHash: true, isSystem: true, deletedAt: true },
    });
    if (user === null || user.isSystem || user.deletedAt !== null) throw unauthorized();
    if (user.passwordHash !== null) {
      if (proof.password === undefined)
        throw badRequest("password is required", [{ field: "password", problem: "required" }]);
      if (!(await verifyPassword(user.passwordHash, proof.password))) throw unauthorized("wrong password");
      return;
    }
    const age = proof.tokenIssuedAt === undefined ? Infinity : Date.now() / 1000 - proof.tokenIssuedAt;
    if (age > this.settings.maxTokenAgeSeconds) {
      throw new AppError("forbidden", "sign in again: deleting the account needs a freshly issued token", {
        reason: "reauthentication_required",
        maxTokenAgeS: this.settings.maxTokenAgeSeconds,
      });
    }
  }

  private async erase(tx: Tx, userId: string): Promise<TombstonedRange[]> {
    const anonymised = await tx.$executeRawUnsafe(
      `UPDATE users SET username = 'deleted-' || id::text, display_name = $2, password_hash = NULL,
              deleted_at = now(), sessions_revoked_at = now()
       WHERE id = $1::uuid AND deleted_at IS NULL`,
      userId,
      DELETED_DISPLAY_NAME,
    );
    if (anonymised === 0) throw unauthorized(); // deleted meanwhile by a concurrent request
    await tx.$executeRawUnsafe(
      `INSERT INTO erased_identities (issuer, subject_hash, erased_at)
       SELECT issuer, encode(sha256(convert_to(subject, 'UTF8')), 'hex'), now()
       FROM external_identities WHERE user_id = $1::uuid
       ON CONFLICT (issuer, subject_hash) DO UPDATE SET erased_at = EXCLUDED.erased_at`,
      userId,
    );
    await tx.$executeRawUnsafe("DELETE FROM external_identities WHERE user_id = $1::uuid", userId);
    await tx.$executeRawUnsafe("DELETE FROM refresh_families WHERE user_id = $1::uuid", userId);
    await tx.$executeRawUnsafe("DELETE FROM push_subscriptions WHERE user_id = $1::uuid", userId);
    if (this.settings.messages === "delete") await this.deleteUnsharedConversations(tx, userId);
    return tombstoneMessagesOf((text, params) => tx.$queryRawUnsafe(text, ...params), userId);
  }

  /** Conversations the user is the only member left in: no one else sees them, so they go with their messages. */
  private async deleteUnsharedConversations(tx: Tx, userId: string): Promise<void> {
    await tx.$executeRawUnsafe(
      `DELETE FROM conversations c
       WHERE c.id IN (SELECT conversation_id FROM members WHERE user_id = $1::uuid)
         AND NOT EXISTS (SELECT 1 FROM members m WHERE m.conversation_id = c.id AND m.user_id <> $1::uuid)`,
      userId,
    );
  }
}
