// /v1/auth: register, login, refresh, logout. Login and register are rate limited per client IP.
import type { FastifyInstance } from "fastify";
import type { Accounts } from "../../auth/accounts.js";
import { LoginBody, RefreshBody, RegisterBody } from "../../chat/schemas.js";
import type { RateLimiters } from "../../limits/rate-limits.js";

export function authRoutes(app: FastifyInstance, deps: { accounts: Accounts; limits: RateLimiters }): void {
  app.post("/v1/auth/register", async (request, reply) => {
    await deps.limits.login.consume(request.ip);
    const body = RegisterBody.parse(request.body);
    return reply.code(201).send(await deps.accounts.register(body));
  });

  app.post("/v1/auth/login", async (request) => {
    await deps.limits.login.consume(request.ip);
    return deps.accounts.login(LoginBody.parse(request.body));
  });

  app.post("/v1/auth/refresh", async (request) => {
    await deps.limits.login.consume(request.ip);
    return deps.accounts.refresh(RefreshBody.parse(request.body).refreshToken);
  });

  app.post("/v1/auth/logout", async (request, reply) => {
    await deps.accounts.logout(RefreshBody.parse(request.body).refreshToken);
    return reply.code(204).send();
  });
}
