import assert from "node:assert/strict";
import { test } from "node:test";
import { ChatApiError } from "../../packages/sdk/src/errors.js";
import { MarkerBatcher } from "../../packages/sdk/src/marker-batcher.js";
import { FakeClock } from "./fake-clock.js";

function batcher(fail?: (conversationId: string, seq: number) => ChatApiError | undefined) {
  const clock = new FakeClock();
  const sent: string[] = [];
  const refused: string[] = [];
  const b = new MarkerBatcher({
    send: async (conversationId, seq) => {
      sent.push(`${conversationId}:${seq}`);
      const error = fail?.(conversationId, seq);
      if (error) throw error;
    },
    delayMs: 250,
    onError: (conversationId, seq, error) => refused.push(`${conversationId}:${seq}:${error.code}`),
    clock,
  });
  return { b, clock, sent, refused };
}

test("a burst of markers becomes one, the highest, per conversation", async () => {
  const { b, clock, sent } = batcher();
  b.setOnline(true);
  for (let seq = 1; seq <= 100; seq++) b.note("a", seq);
  b.note("b", 7);
  b.note("a", 50); // lower: markers only move forward
  await clock.advance(249);
  assert.deepEqual(sent, []);
  await clock.advance(1);
  assert.deepEqual(sent, ["a:100", "b:7"]);
  assert.equal(b.ackedSeq("a"), 100);
  b.note("a", 100);
  await clock.advance(1000);
  assert.deepEqual(sent, ["a:100", "b:7"], "an acked marker is not sent again");
});

test("offline markers wait for the connection", async () => {
  const { b, clock, sent } = batcher();
  b.note("a", 3);
  await clock.advance(10_000);
  assert.deepEqual(sent, []);
  b.setOnline(true);
  await clock.advance(0);
  assert.deepEqual(sent, ["a:3"]);
});

test("a transient failure is retried; a refusal is reported and dropped", async () => {
  let failures = 1;
  const { b, clock, sent, refused } = batcher((conversationId) => {
    if (conversationId === "gone") return new ChatApiError("not_found", "conversation not found");
    if (failures-- > 0) return new ChatApiError("unavailable", "down");
    return undefined;
  });
  b.setOnline(true);
  b.note("a", 5);
  b.note("gone", 2);
  await clock.advance(250);
  assert.deepEqual(sent, ["a:5", "gone:2"]);
  assert.deepEqual(refused, ["gone:2:not_found"]);
  await clock.advance(1000);
  assert.deepEqual(sent, ["a:5", "gone:2", "a:5"]);
  assert.equal(b.ackedSeq("a"), 5);
  b.close();
});

test("a marker the gateway already holds (own message, another device's announcement) is not sent", async () => {
  const { b, clock, sent } = batcher();
  b.setOnline(true);
  b.note("a", 4);
  b.heldAt("a", 5); // the user's own message 5: sending moved the markers past the pending 4
  b.note("a", 5);
  b.note("b", 9);
  b.heldAt("b", 8); // another device moved it to 8: the pending 9 still goes
  await clock.advance(250);
  assert.deepEqual(sent, ["b:9"]);
  assert.equal(b.ackedSeq("a"), 5);
  b.note("a", 6);
  await clock.advance(250);
  assert.deepEqual(sent, ["b:9", "a:6"]);
});
