// The route schemas' validator and serializer (src/http/zod-schemas.ts): a body refused by its schema answers what
// parsing it by hand answered (the ZodError through errors.ts), an absent body is not a JSON null, and with answer
// checking on, an answer its documented schema refuses is a 500 instead of a silently wrong document.
import assert from "node:assert/strict";
import { test } from "node:test";
import Fastify, { type FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { toWireError } from "../../src/errors.js";
import { answers } from "../../src/http/api-schemas.js";
import { useZodSchemas } from "../../src/http/zod-schemas.js";

const Body = z.strictObject({ name: z.string().min(1), content: z.string().max(5).optional() });

function app(checkAnswers: boolean, answer: unknown = { ok: true }): FastifyInstance {
  const server = Fastify();
  useZodSchemas(server, checkAnswers);
  server.setErrorHandler((err, _request, reply) => {
    const { error, status } = toWireError(err);
    void reply.code(status).send({ error });
  });
  const typed = server.withTypeProvider<ZodTypeProvider>();
  const response = answers({ 200: z.strictObject({ ok: z.boolean() }) }, []);
  typed.post("/strict", { schema: { body: Body, response } }, async () => answer);
  typed.post("/optional", { schema: { body: Body.optional(), response } }, async (request) => ({
    ok: request.body === undefined,
  }));
  return server;
}

/** What a route that parsed the body by hand answered. */
function byHand(schema: z.ZodType, body: unknown) {
  const result = schema.safeParse(body);
  assert.equal(result.success, false);
  const { error, status } = toWireError(result.error);
  return { status, body: JSON.stringify({ error }) };
}

test("a refused body answers exactly what parsing it by hand answered", async () => {
  const server = app(false);
  const cases: [unknown, string][] = [
    [{ name: "" }, "too short"],
    [{ name: "a", extra: 1 }, "unknown key"],
    [{ name: "a", content: "too long!" }, "content too long: payload_too_large"],
    [[1, 2], "not an object"],
    [null, "a JSON null"],
  ];
  for (const [body, what] of cases) {
    const res = await server.inject({
      method: "POST",
      url: "/strict",
      payload: JSON.stringify(body),
      headers: { "content-type": "application/json" },
    });
    const expected = byHand(Body, body);
    assert.equal(res.statusCode, expected.status, what);
    assert.equal(res.body, expected.body, what);
  }
  // No body at all reaches the schema as undefined (not as null).
  const none = await server.inject({ method: "POST", url: "/strict" });
  assert.equal(none.body, byHand(Body, undefined).body);
  assert.match(none.body, /received undefined/);
  await server.close();
});

test("an optional body: none is accepted, a JSON null is refused", async () => {
  const server = app(false);
  const none = await server.inject({ method: "POST", url: "/optional" });
  assert.equal(none.statusCode, 200);
  assert.deepEqual(none.json(), { ok: true });
  const nul = await server.inject({
    method: "POST",
    url: "/optional",
    payload: "null",
    headers: { "content-type": "application/json" },
  });
  assert.equal(nul.statusCode, 400);
  assert.equal(nul.body, byHand(Body, null).body);
  await server.close();
});

test("answers are serialized as JSON.stringify does; with checking on, an undocumented answer fails", async () => {
  const loose = app(false, { ok: true, extra: "x" });
  const res = await loose.inject({ method: "POST", url: "/strict", payload: { name: "a" } });
  assert.equal(res.statusCode, 200);
  assert.equal(res.body, JSON.stringify({ ok: true, extra: "x" }));
  await loose.close();

  const checked = app(true, { ok: true, extra: "x" });
  const refused = await checked.inject({ method: "POST", url: "/strict", payload: { name: "a" } });
  assert.equal(refused.statusCode, 500);
  assert.equal(refused.json().error.code, "internal");
  await checked.close();
});
