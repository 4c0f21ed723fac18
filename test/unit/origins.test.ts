// Which handshakes and HTTP calls the Origin check lets through: browsers only from allowed origins, the gateway's own
// origin always (its page; native WebSocket stacks that send the URL's origin), native clients without Origin always.
import assert from "node:assert/strict";
import { test } from "node:test";
import { originPolicy } from "../../src/realtime/origins.js";

test("unconfigured: the gateway's own origin and no Origin pass, any other origin is refused", () => {
  const policy = originPolicy([]);
  assert.equal(policy.allows(undefined, "chat.example.com"), true);
  assert.equal(policy.allows("https://chat.example.com", "chat.example.com"), true);
  assert.equal(policy.allows("https://evil.example", "chat.example.com"), false);
  assert.equal(policy.allows("not a url", "chat.example.com"), false);
});

test("configured: the listed origins, and still the gateway's own origin (a native Starscream client)", () => {
  const policy = originPolicy(["https://app.example.com/"]);
  assert.equal(policy.allows("https://app.example.com", "chat.example.com"), true);
  assert.equal(policy.allows("https://chat.example.com", "chat.example.com"), true);
  assert.equal(policy.allows("https://evil.example", "chat.example.com"), false);
  assert.equal(policy.allows("https://chat.example.com.evil.example", "chat.example.com"), false);
});
