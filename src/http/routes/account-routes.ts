// DELETE /v1/users/me: the caller deletes their own account (src/auth/account-deletion.ts says what that does).
// A password attempt here counts against the same per-account failure limit as login, so a stolen access token
// cannot be used to guess the password.
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { AccountDeletion } from "../../auth/account-deletion.js";
import { AppError } from "../../errors.js";
import type { RateLimiters } from "../../limits/rate-limits.js";
import { callerOf, userOf } from "../authenticate.js";
import { optionalBody } from "../optional-body.js";

/** Any non-empty password is checked (a wrong one is `unauthorized`, whatever its length). */
const DeleteAccountBody = z.strictObject({ password: z.string().min(1).max(256).optional() });

export function accountRoutes(app: FastifyInstance, deps: { deletion: AccountDeletion; limits: RateLimiters }): void {
  app.delete("/v1/users/me", async (request, reply) => {
    const userId = userOf(request);
    const { password } = DeleteAccountBody.parse(optionalBody(request));
    const proof = { password, tokenIssuedAt: callerOf(request).issuedAt };
    const username = password === undefined ? undefined : await deps.deletion.usernameOf(userId);
    if (username === undefined) {
      await deps.deletion.deleteAccount(userId, proof);
      return reply.code(204).send();
    }
    await deps.limits.loginFailures.attempt(username);
    try {
      await deps.deletion.deleteAccount(userId, proof);
    } catch (err) {
      // A wrong password keeps its point; anything else was not a guess.
      if (!(err instanceof AppError && err.code === "unauthorized"))
        await deps.limits.loginFailures.succeeded(username);
      throw err;
    }
    await deps.limits.loginFailures.succeeded(username);
    return reply.code(204).send();
  });
}
