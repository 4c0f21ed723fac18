// The gate in front of message changes: one change per message at a time, a cap on all of them, bounded waits.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { ChangeGate } from "../../src/chat/change-gate.js";

const gates: ChangeGate[] = [];
after(() => gates.forEach((g) => g.close()));
const gate = (maxConcurrent: number, maxQueue = 100, maxWaitMs = 5_000) => {
  const g = new ChangeGate({ maxConcurrent, maxQueue, maxWaitMs });
  gates.push(g);
  return g;
};

/** A task the test finishes by hand, recording when it started. */
function manual(log: string[], name: string) {
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  return {
    task: async () => {
      log.push(`start ${name}`);
      await done;
      log.push(`end ${name}`);
      return name;
    },
    finish: () => finish(),
  };
}
const tick = () => new Promise((r) => setImmediate(r));

test("changes of one message run one at a time, in order; other messages run alongside up to the cap", async () => {
  const g = gate(2);
  const log: string[] = [];
  const a1 = manual(log, "a1");
  const a2 = manual(log, "a2");
  const b1 = manual(log, "b1");
  const c1 = manual(log, "c1");
  const results = [g.run("a", a1.task), g.run("a", a2.task), g.run("b", b1.task), g.run("c", c1.task)];
  await tick();
  assert.deepEqual(log, ["start a1", "start b1"], "a2 waits for a1, c1 for a free slot");
  assert.deepEqual(g.load, { running: 2, waiting: 2 });
  a1.finish();
  await tick();
  await tick();
  assert.deepEqual(log.slice(2), ["end a1", "start a2"], "a2 is first in line once a1 is done");
  b1.finish();
  a2.finish();
  c1.finish();
  assert.deepEqual(await Promise.all(results), ["a1", "a2", "b1", "c1"]);
  assert.deepEqual(g.load, { running: 0, waiting: 0 });
});

test("a full queue refuses at once with unavailable and a retry hint, and runs nothing", async () => {
  const g = gate(1, 1);
  const log: string[] = [];
  const first = manual(log, "first");
  const running = g.run("a", first.task);
  const queued = g.run("a", async () => "queued");
  let ran = false;
  await assert.rejects(
    g.run("b", async () => {
      ran = true;
    }),
    (err: { code?: string; details?: { retryAfterMs?: number } }) =>
      err.code === "unavailable" && typeof err.details?.retryAfterMs === "number",
  );
  assert.equal(ran, false);
  first.finish();
  assert.equal(await running, "first");
  assert.equal(await queued, "queued");
});

test("a change that waited past maxWaitMs is refused without running", async () => {
  const g = gate(1, 100, 100);
  // The gate's sweep timer is unref'd (it must not keep a pod alive); this keeps the test's event loop running.
  const keepAlive = setTimeout(() => undefined, 5_000);
  const log: string[] = [];
  const stuck = manual(log, "stuck");
  const running = g.run("a", stuck.task);
  let ran = false;
  await assert.rejects(
    g.run("b", async () => {
      ran = true;
    }),
    (err: { code?: string }) => err.code === "unavailable",
  );
  assert.equal(ran, false);
  stuck.finish();
  await running;
  clearTimeout(keepAlive);
});

test("a failing change frees its message and slot for the next", async () => {
  const g = gate(1);
  await assert.rejects(
    g.run("a", async () => {
      throw new Error("boom");
    }),
    /boom/,
  );
  assert.equal(await g.run("a", async () => "next"), "next");
});
