// /v1/auth: register, login, refresh, logout. Register and login are rate limited per client IP (request.ip, which
// believes X-Forwarded-For only as far as TRUST_PROXY says), failed logins per account, refresh per login.
// With OWN_ACCOUNTS=off, register, login and refresh answer `forbidden` (sign-in belongs to the identity provider of
// JWT_JWKS_URL); logout still works, so a client can always let go of a login it holds.
import type { FastifyInstance } from "fastify";
import type { Accounts } from "../../auth/accounts.js";
import { LoginBody, RefreshBody, RegisterBody } from "@chat-gateway/protocol/schemas";
import { AppError, forbidden, unauthorized } from "../../errors.js";
import type { RateLimiters } from "../../limits/rate-limits.js";

export function authRoutes(
  app: FastifyInstance,
  deps: { accounts: Accounts; limits: RateLimiters; ownAccounts?: boolean | undefined },
): void {
  const ownAccountsOnly = async () => {
    if (deps.ownAccounts === false)
      throw forbidden("own accounts are switched off: sign in with the identity provider");
  };
  const own = { onRequest: ownAccountsOnly };

  app.post("/v1/auth/register", own, async (request, reply) => {
    await deps.limits.login.consume(request.ip);
    const body = RegisterBody.parse(request.body);
    return reply.code(201).send(await deps.accounts.register(body));
  });

  app.post("/v1/auth/login", own, async (request) => {
    await deps.limits.login.consume(request.ip);
    const body = LoginBody.parse(request.body);
    // Per account (the schema lower-cases the name): one point reserved per attempt, given back when it succeeds,
    // so only failures count, and a burst of parallel guesses cannot all slip in before the first one is counted.
    await deps.limits.loginFailures.attempt(body.username);
    let result;
    try {
      result = await deps.accounts.login(body);
    } catch (err) {
      // A wrong password keeps its point; anything else (the database down) was not a guess.
      if (!(err instanceof AppError && err.code === "unauthorized"))
        await deps.limits.loginFailures.succeeded(body.username);
      throw err;
    }
    await deps.limits.loginFailures.succeeded(body.username);
    return result;
  });

  app.post("/v1/auth/refresh", own, async (request) => {
    const { refreshToken } = RefreshBody.parse(request.body);
    // Per login, so one office's NAT address does not share a budget; a token that names no login is limited per
    // client IP instead (guessing).
    const familyId = await deps.accounts.familyOf(refreshToken);
    if (familyId === undefined) {
      await deps.limits.login.consume(request.ip);
      throw unauthorized("invalid refresh token");
    }
    await deps.limits.refresh.consume(familyId);
    return deps.accounts.refresh(refreshToken);
  });

  app.post("/v1/auth/logout", async (request, reply) => {
    await deps.accounts.logout(RefreshBody.parse(request.body).refreshToken);
    return reply.code(204).send();
  });
}
