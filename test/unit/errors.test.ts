// The error catalog is the contract: the code map, the README's table and the mapping of library errors.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { z } from "zod";
import { AppError, ERROR_STATUS, toWireError, unavailable } from "../../src/errors.js";

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

/** A database error the way Prisma 7 raises it from a raw query over the pg adapter (P2010, SQLSTATE in the cause). */
const driverError = (sqlstate: string, kind = "postgres") =>
  Object.assign(new Error("Raw query failed"), {
    code: "P2010",
    meta: { driverAdapterError: { cause: { kind, originalCode: sqlstate, originalMessage: "..." } } },
  });

test("PostgreSQL refusing the request's own data is bad_request, deadlines are unavailable", () => {
  // Class 22 (data exception) and 54 (program limit exceeded): the request is wrong, not the gateway.
  for (const [sqlstate, kind] of [
    ["22021", "postgres"], // invalid byte sequence (a NUL)
    ["22P02", "InvalidInputValue"],
    ["22001", "LengthMismatch"],
    ["54000", "postgres"],
  ] as const) {
    const wire = toWireError(driverError(sqlstate, kind));
    assert.equal(wire.error.code, "bad_request", sqlstate);
    assert.equal(wire.status, 400);
    assert.equal(wire.isBug, false);
    assert.doesNotMatch(wire.error.message, /P2010|22021|Raw query/, "no internals in the answer");
  }
  // lock_timeout (55P03), statement_timeout (57014) and node-postgres's query_timeout: the database is too slow now.
  for (const err of [driverError("55P03"), driverError("57014"), new Error("Query read timeout")]) {
    assert.equal(toWireError(err).error.code, "unavailable", err.message);
  }
});

test("unavailable carries details, such as retryAfterMs", () => {
  const wire = toWireError(unavailable("busy", { retryAfterMs: 400 }));
  assert.deepEqual(wire, {
    error: { code: "unavailable", message: "busy", details: { retryAfterMs: 400 } },
    status: 503,
    isBug: false,
  });
});
