// What Apple devices are sent: a visible alert Apple accepts at priority 10, or a background push at priority 5;
// never a data-only push at priority 10 (APNs refuses or throttles it), never content unless configured.
import assert from "node:assert/strict";
import { test } from "node:test";
import { applePush } from "../../src/push/apple.js";

const counted = { type: "messages" as const, conversationId: "c1", seq: 7, count: 3 };

test("alert style: a mutable alert at priority 10, threaded by conversation, without content", () => {
  const push = applePush(counted, "alert");
  assert.deepEqual(push.headers, { "apns-push-type": "alert", "apns-priority": "10" });
  assert.deepEqual(push.payload.aps, {
    alert: { title: "New message", body: "3 new messages" },
    "mutable-content": 1,
    sound: "default",
    "thread-id": "c1",
  });
  assert.equal(push.payload.seq, 7);
});

test("alert style with content: the sender (and group) as title, the message as body", () => {
  const push = applePush(
    { ...counted, count: 1, sender: { id: "u1", displayName: "Ann" }, title: "Team", body: "hi" },
    "alert",
  );
  assert.deepEqual((push.payload.aps as { alert: unknown }).alert, { title: "Ann in Team", body: "hi" });
});

test("silent style: content-available at priority 5, a background push", () => {
  const push = applePush(counted, "silent");
  assert.deepEqual(push.headers, { "apns-push-type": "background", "apns-priority": "5" });
  assert.deepEqual(push.payload.aps, { "content-available": 1 });
});

test("a message request says so, and never who wrote or what", () => {
  const push = applePush({ ...counted, request: true, body: "message request" }, "alert");
  assert.deepEqual((push.payload.aps as { alert: unknown }).alert, {
    title: "Message request",
    body: "Someone wants to chat with you",
  });
});
