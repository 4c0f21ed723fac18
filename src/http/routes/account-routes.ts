// DELETE /v1/users/me: the caller deletes their own account (src/auth/account-deletion.ts says what that does).
// A password attempt here counts against the same per-account failure limit as login, so a stolen access token
// cannot be used to guess the password.
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { AccountDeletion } from "../../auth/account-deletion.js";
import { AppError } from "../../errors.js";
import type { RateLimiters } from "../../limits/rate-limits.js";
import { bearerOperation } from "../api-schemas.js";
import { callerOf, requireUser, userOf } from "../authenticate.js";

/** Any non-empty password is checked (a wrong one is `unauthorized`, whatever its length). */
const DeleteAccountBody = z.strictObject({ password: z.string().min(1).max(256).optional() });

export function accountRoutes(
  instance: FastifyInstance,
  deps: { deletion: AccountDeletion; limits: RateLimiters },
): void {
  const app = instance.withTypeProvider<ZodTypeProvider>();
  const deleteAccount = bearerOperation(
    "users",
    "Delete the caller's account (README, Account deletion)",
    {
      // No body at all is an empty one; a JSON null is a malformed body.
      body: DeleteAccountBody.optional(),
      description: "Needs the password of an own account, or an access token issued in the last minutes.",
    },
    { 204: "deleted" },
    ["forbidden", "payload_too_large"],
  );
  app.delete("/v1/users/me", { schema: deleteAccount, preValidation: requireUser }, async (request, reply) => {
    const userId = userOf(request);
    const password = request.body?.password;
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
