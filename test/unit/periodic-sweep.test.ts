// The clean-up loop the token and upload sweeps share (src/lifecycle/periodic-sweep.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { startPeriodicSweep } from "../../src/lifecycle/periodic-sweep.js";

test("batches until one comes back short, and answers the total", async () => {
  const left = [3, 3, 1];
  const asked: number[] = [];
  const sweep = startPeriodicSweep({
    deleteBatch: async (limit) => {
      asked.push(limit);
      return left.shift() ?? 0;
    },
    batchSize: 3,
    intervalMs: 60_000,
    onError: () => assert.fail("no error expected"),
  });
  assert.equal(await sweep.runOnce(), 7);
  assert.deepEqual(asked, [3, 3, 3]);
  sweep.stop();
});

test("one sweep at a time: a second call joins the running one", async () => {
  let release!: () => void;
  let batches = 0;
  const sweep = startPeriodicSweep({
    deleteBatch: async () => {
      batches++;
      await new Promise<void>((resolve) => (release = resolve));
      return 0;
    },
    batchSize: 10,
    intervalMs: 60_000,
    onError: () => undefined,
  });
  const first = sweep.runOnce();
  const second = sweep.runOnce();
  assert.equal(first, second);
  release();
  await first;
  assert.equal(batches, 1);
  // Finished: the next call starts a new sweep.
  const third = sweep.runOnce();
  assert.notEqual(third, first);
  release();
  await third;
  sweep.stop();
});

test("stop ends a sweep between batches", async () => {
  let batches = 0;
  const sweep = startPeriodicSweep({
    deleteBatch: async (limit) => {
      batches++;
      if (batches === 2) sweep.stop();
      return limit;
    },
    batchSize: 5,
    intervalMs: 60_000,
    onError: () => undefined,
  });
  assert.equal(await sweep.runOnce(), 10);
  assert.equal(batches, 2);
});

test("the timer sweeps by itself and reports failures to onError", async () => {
  const errors: unknown[] = [];
  const sweep = startPeriodicSweep({
    deleteBatch: async () => {
      throw new Error("database down");
    },
    batchSize: 5,
    intervalMs: 20,
    onError: (err) => errors.push(err),
  });
  await new Promise((resolve) => setTimeout(resolve, 120));
  sweep.stop();
  assert.ok(errors.length >= 1);
  assert.equal((errors[0] as Error).message, "database down");
});
