import assert from "node:assert/strict";
import { test } from "node:test";
import { TypingThrottle } from "../../packages/sdk/src/typing-throttle.js";
import { FakeClock } from "./fake-clock.js";

function throttle() {
  const clock = new FakeClock();
  const sent: string[] = [];
  const t = new TypingThrottle({
    send: (conversationId, isTyping) => sent.push(`${conversationId}:${isTyping}`),
    throttleMs: 3000,
    idleMs: 5000,
    clock,
  });
  return { t, clock, sent };
}

test("keystrokes send one typing:true per throttle window", async () => {
  const { t, clock, sent } = throttle();
  for (let i = 0; i < 10; i++) {
    t.set("a", true);
    await clock.advance(400); // 10 keystrokes over 4 s
  }
  assert.deepEqual(sent, ["a:true", "a:true"]);
});

test("stopping sends false once; idling sends it on the app's behalf", async () => {
  const { t, clock, sent } = throttle();
  t.set("a", true);
  t.set("a", false);
  t.set("a", false);
  assert.deepEqual(sent, ["a:true", "a:false"]);
  t.set("b", true);
  await clock.advance(4999);
  assert.deepEqual(sent, ["a:true", "a:false", "b:true"]);
  await clock.advance(1);
  assert.deepEqual(sent, ["a:true", "a:false", "b:true", "b:false"]);
});

test("false without a true before it sends nothing; reset forgets silently", async () => {
  const { t, clock, sent } = throttle();
  t.set("a", false);
  t.set("a", true);
  t.reset();
  await clock.advance(10_000);
  assert.deepEqual(sent, ["a:true"]);
  t.set("a", true);
  assert.deepEqual(sent, ["a:true", "a:true"], "after a reset the next keystroke is sent again");
});
