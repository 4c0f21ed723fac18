// /v1/auth: register, login, refresh, logout. Register and login are rate limited per client IP (request.ip, which
// believes X-Forwarded-For only as far as TRUST_PROXY says), failed logins per account, refresh per login.
// With OWN_ACCOUNTS=off, register, login and refresh answer `forbidden` (sign-in belongs to the identity provider of
// JWT_JWKS_URL); logout still works, so a client can always let go of a login it holds.
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { Accounts } from "../../auth/accounts.js";
import { LoginBody, RefreshBody, RegisterBody } from "@chat-gateway/protocol/schemas";
import { AppError, forbidden, unauthorized } from "../../errors.js";
import type { RateLimiters } from "../../limits/rate-limits.js";
import { AuthResultSchema, operation } from "../api-schemas.js";

export function authRoutes(
  instance: FastifyInstance,
  deps: { accounts: Accounts; limits: RateLimiters; ownAccounts?: boolean | undefined },
): void {
  const ownAccountsOnly = async () => {
    if (deps.ownAccounts === false)
      throw forbidden("own accounts are switched off: sign in with the identity provider");
  };
  const app = instance.withTypeProvider<ZodTypeProvider>();
  // Counted per client IP before the body is validated: a malformed attempt spends a point too.
  const perIp = async (request: FastifyRequest) => deps.limits.login.consume(request.ip);
  const own = { onRequest: ownAccountsOnly, preValidation: perIp };
  const ownErrors = ["forbidden", "rate_limited", "unavailable", "payload_too_large"] as const;

  app.post(
    "/v1/auth/register",
    {
      ...own,
      schema: operation("auth", "Create an own account and log in", { body: RegisterBody }, { 201: AuthResultSchema }, [
        ...ownErrors,
        "conflict",
      ]),
    },
    async (request, reply) => reply.code(201).send(await deps.accounts.register(request.body)),
  );

  const login = operation(
    "auth",
    "Log in: a new login (refresh family) with its tokens",
    { body: LoginBody },
    { 200: AuthResultSchema },
    [...ownErrors, "unauthorized"],
  );
  app.post("/v1/auth/login", { ...own, schema: login }, async (request) => {
    const body = request.body;
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

  const refresh = operation(
    "auth",
    "Exchange a refresh token for a new pair (the old one is spent)",
    { body: RefreshBody },
    { 200: AuthResultSchema },
    [...ownErrors, "unauthorized"],
  );
  app.post("/v1/auth/refresh", { onRequest: ownAccountsOnly, schema: refresh }, async (request) => {
    const { refreshToken } = request.body;
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

  const logout = operation(
    "auth",
    "Revoke a login: its sockets get session:ended",
    { body: RefreshBody },
    { 204: "revoked" },
    ["unavailable", "payload_too_large"],
  );
  app.post("/v1/auth/logout", { schema: logout }, async (request, reply) => {
    await deps.accounts.logout(request.body.refreshToken);
    return reply.code(204).send();
  });
}
