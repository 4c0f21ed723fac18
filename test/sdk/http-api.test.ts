import assert from "node:assert/strict";
import { test } from "node:test";
import { ChatApiError } from "../../packages/sdk/src/errors.js";
import { ChatHttpApi, errorFromResponse } from "../../packages/sdk/src/http-api.js";
import { createClientMsgId } from "../../packages/sdk/src/ids.js";

test("the gateway's error body becomes a ChatApiError with its code, message and details", () => {
  const body = { error: { code: "bad_request", message: "invalid limit", details: [{ field: "limit" }] } };
  const error = errorFromResponse(400, body);
  assert.ok(error instanceof ChatApiError);
  assert.deepEqual(
    { code: error.code, status: error.status, message: error.message, details: error.details },
    { code: "bad_request", status: 400, message: "invalid limit", details: [{ field: "limit" }] },
  );
});

test("answers without the gateway's JSON (a proxy's error page) get a code from the status", () => {
  assert.equal(errorFromResponse(502, undefined).code, "unavailable");
  assert.equal(errorFromResponse(504, "<html>").code, "unavailable");
  assert.equal(errorFromResponse(500, undefined).code, "internal");
  assert.equal(errorFromResponse(418, undefined).code, "bad_request");
  const limited = errorFromResponse(429, undefined, "2");
  assert.equal(limited.code, "rate_limited");
  assert.equal(limited.retryAfterMs, 2000);
});

test("an unreachable gateway is a network_error, not an exception of fetch's own", async () => {
  const api = new ChatHttpApi({ baseUrl: "http://127.0.0.1:9/" });
  await assert.rejects(api.login({ username: "a", password: "b" }), (error: unknown) => {
    assert.ok(error instanceof ChatApiError);
    assert.equal(error.code, "network_error");
    assert.equal(error.status, 0);
    return true;
  });
});

test("clientMsgIds are v4 UUIDs, also without crypto.randomUUID", () => {
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  assert.match(createClientMsgId(), uuid);
  const original = Object.getOwnPropertyDescriptor(globalThis, "crypto");
  Object.defineProperty(globalThis, "crypto", { value: undefined, configurable: true });
  try {
    const ids = new Set(Array.from({ length: 1000 }, () => createClientMsgId()));
    assert.equal(ids.size, 1000);
    for (const id of ids) assert.match(id, uuid);
  } finally {
    if (original) Object.defineProperty(globalThis, "crypto", original);
  }
});
