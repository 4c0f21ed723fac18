// The error catalog is the contract: the code map, the README's table and the mapping of library errors.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { z } from "zod";
import { AppError, ERROR_STATUS, toWireError } from "../../src/errors.js";

test("the README's error table lists exactly the catalog's codes and statuses", () => {
  const readme = readFileSync("README.md", "utf8");
  const rows = [...readme.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]);
  assert.deepEqual(Object.fromEntries(rows), ERROR_STATUS);
});

test("library errors become protocol codes, internals never leak", () => {
  const prismaDown = Object.assign(new Error("Can't reach database server"), { code: "P1001" });
  assert.equal(toWireError(prismaDown).error.code, "unavailable");
  const pgDown = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
  assert.equal(toWireError({ cause: pgDown }).status, 503);
  const zod = z.object({ seq: z.number() }).safeParse({ seq: "x" });
  const wire = toWireError(zod.error).error;
  assert.equal(wire.code, "bad_request");
  assert.deepEqual(wire.details, [{ field: "seq", problem: "Invalid input: expected number, received string" }]);
  const bug = toWireError(new TypeError("secret internal detail at /src/x.ts"));
  assert.deepEqual(bug, { error: { code: "internal", message: "internal error" }, status: 500, isBug: true });
  const limited = toWireError(new AppError("rate_limited", "too many requests", { retryAfterMs: 250 }));
  assert.deepEqual(limited.error.details, { retryAfterMs: 250 });
  assert.equal(limited.status, 429);
});
