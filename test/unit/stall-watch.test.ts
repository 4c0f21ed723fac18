// The event-loop stall watch reports a blocked loop (with how long) and stays quiet on a normal one.
import assert from "node:assert/strict";
import { test } from "node:test";
import { watchEventLoopStalls } from "../../src/realtime/stall-watch.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("a loop blocked past the threshold is reported once, a normal one not at all", async () => {
  const stalls: number[] = [];
  const watch = watchEventLoopStalls(200, (ms) => stalls.push(ms));
  try {
    await sleep(600);
    assert.deepEqual(stalls, [], "no stall while the loop runs freely");
    const until = Date.now() + 500;
    while (Date.now() < until) {
      // blocks the event loop, as a huge synchronous burst would
    }
    await sleep(400);
    assert.equal(stalls.length, 1);
    assert.ok(stalls[0]! >= 200 && stalls[0]! < 1_000, `reported ${stalls[0]} ms`);
  } finally {
    watch.stop();
  }
});
