// The one classification of push services' answers (src/push/delivery-outcome.ts): what deletes a subscription,
// what is refused for good, and what is retried, per provider.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { classifyAnswer, isRetryable, settle, TransientPushError } from "../../src/push/delivery-outcome.js";

describe("push answers, classified once", () => {
  test("the status rules every service shares", () => {
    for (const provider of ["webpush", "fcm", "apns"] as const) {
      assert.deepEqual(classifyAnswer(provider, { status: 201 }), { kind: "sent" });
      assert.deepEqual(classifyAnswer(provider, { status: 410 }), { kind: "gone" });
      assert.deepEqual(classifyAnswer(provider, { status: 400 }), { kind: "rejected", status: 400 });
      for (const status of [408, 429, 500, 503]) {
        assert.deepEqual(classifyAnswer(provider, { status }), { kind: "retry", status, renewCredentials: false });
      }
    }
  });

  test("APNs: dead device tokens are gone, a stale provider token is renewed and retried", () => {
    assert.deepEqual(classifyAnswer("apns", { status: 400, reasons: ["BadDeviceToken"] }), { kind: "gone" });
    assert.deepEqual(classifyAnswer("apns", { status: 400, reasons: ["DeviceTokenNotForTopic"] }), { kind: "gone" });
    assert.deepEqual(classifyAnswer("apns", { status: 400, reasons: ["BadTopic"] }), { kind: "rejected", status: 400 });
    assert.deepEqual(classifyAnswer("apns", { status: 403, reasons: ["ExpiredProviderToken"] }), {
      kind: "retry",
      status: 403,
      renewCredentials: true,
    });
    assert.deepEqual(classifyAnswer("apns", { status: 403, reasons: ["BadCertificate"] }), {
      kind: "rejected",
      status: 403,
    });
  });

  test("FCM: UNREGISTERED or NOT_FOUND is gone whatever the status; 401 renews the access token", () => {
    assert.deepEqual(classifyAnswer("fcm", { status: 400, reasons: ["INVALID_ARGUMENT", "UNREGISTERED"] }), {
      kind: "gone",
    });
    assert.deepEqual(classifyAnswer("fcm", { status: 404, reasons: ["NOT_FOUND"] }), { kind: "gone" });
    assert.deepEqual(classifyAnswer("fcm", { status: 401 }), { kind: "retry", status: 401, renewCredentials: true });
  });

  test("the operator's webhook has no subscription to delete: its 404/410 is a refusal", () => {
    assert.deepEqual(classifyAnswer("webhook", { status: 410 }), { kind: "rejected", status: 410 });
    assert.deepEqual(classifyAnswer("webhook", { status: 200 }), { kind: "sent" });
  });

  test("settle throws a retry as TransientPushError, after renewing credentials when asked", () => {
    let renewed = 0;
    assert.throws(
      () => settle("fcm", { status: 401 }, "FCM", () => renewed++),
      (err: unknown) => err instanceof TransientPushError && err.status === 401,
    );
    assert.equal(renewed, 1);
    assert.throws(() => settle("webpush", { status: 503 }, "web push", () => renewed++), TransientPushError);
    assert.equal(renewed, 1);
    assert.deepEqual(
      settle("webpush", { status: 404 }, "web push", () => renewed++),
      { kind: "gone" },
    );
  });

  test("the queue retries transient and unexpected failures, not decided refusals", () => {
    assert.equal(isRetryable(new TransientPushError("x", 503)), true);
    assert.equal(isRetryable(new Error("connection reset")), true);
    const refusal = new Error("not a member");
    refusal.name = "AppError";
    assert.equal(isRetryable(refusal), false);
  });
});
