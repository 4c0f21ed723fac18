// The fan-out's backlog: the age of the oldest publish Redis has not answered, whatever order the answers come in.
import assert from "node:assert/strict";
import { test } from "node:test";
import { PublishBacklog } from "../../src/realtime/publish-backlog.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("the lag is the age of the oldest unanswered publish, 0 when all are answered", async () => {
  const backlog = new PublishBacklog();
  assert.equal(backlog.lagMs, 0);
  const first = backlog.begin();
  await sleep(60);
  const second = backlog.begin();
  assert.ok(backlog.lagMs >= 50, `the first publish has waited ${backlog.lagMs} ms`);
  // Answered out of order (a cluster has a connection per node): the first still holds the lag.
  second.settle();
  assert.ok(backlog.lagMs >= 50);
  first.settle();
  assert.equal(backlog.lagMs, 0);
  assert.equal(backlog.pending, 0);
});

test("settled publishes are dropped, so a long run does not grow the backlog", () => {
  const backlog = new PublishBacklog();
  const stuck = backlog.begin();
  for (let i = 0; i < 10_000; i++) backlog.begin().settle();
  assert.equal(backlog.pending, 10_001, "behind an unanswered one, answered ones wait their turn");
  stuck.settle();
  assert.equal(backlog.lagMs, 0);
  assert.equal(backlog.pending, 0);
  for (let i = 0; i < 5_000; i++) {
    const p = backlog.begin();
    if (i % 2 === 0) p.settle();
    void backlog.lagMs;
    if (i % 2 === 1) p.settle();
  }
  assert.equal(backlog.lagMs, 0);
  assert.equal(backlog.pending, 0);
});
