// The change numbers a coalesced `message:updated` stands for, as the ranges it carries (change-announcer.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { toRanges } from "../../src/chat/change-announcer.js";

test("change numbers become ascending inclusive ranges, repeats once", () => {
  assert.deepEqual(toRanges([]), []);
  assert.deepEqual(toRanges([7]), [[7, 7]]);
  assert.deepEqual(toRanges([5, 3, 4, 9]), [
    [3, 5],
    [9, 9],
  ]);
  // Two pods interleave their numbers: each pod's event lists only its own.
  assert.deepEqual(toRanges([101, 103, 104, 106, 104]), [
    [101, 101],
    [103, 104],
    [106, 106],
  ]);
});
