// Where reads go with a replica (src/db/reads.ts) and when a history page counts as complete (chat/messages.ts): the
// rules behind DATABASE_READ_URL, without servers. The real replica is in test/integration/read-replica.test.ts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { reachesWatermark } from "../../src/chat/messages.js";
import type { Db } from "../../src/db/client.js";
import { type FallbackReason, Reads } from "../../src/db/reads.js";
import { notFound } from "../../src/errors.js";

// Two distinct handles stand for the two servers: the router only passes them to the query.
const primary = { name: "primary" } as unknown as Db;
const replica = { name: "replica" } as unknown as Db;
const nameOf = (db: Db) => (db as unknown as { name: string }).name;

function router(retryMs = 50) {
  const seen: string[] = [];
  const reads = new Reads(primary, replica, {
    retryMs,
    onRead: (_kind, source, reason?: FallbackReason) => seen.push(reason ? `${source}:${reason}` : source),
  });
  return { reads, seen };
}

test("without a replica every read goes to the primary, uncounted", async () => {
  const seen: string[] = [];
  const reads = new Reads(primary, undefined, { onRead: () => seen.push("x") });
  assert.equal(await reads.read("history", async (db) => nameOf(db)), "primary");
  assert.deepEqual(seen, []);
});

test("a complete replica answer is used; one behind is read again from the primary", async () => {
  const { reads, seen } = router();
  assert.equal(await reads.read("history", async (db) => nameOf(db)), "replica");
  assert.equal(
    await reads.read(
      "history",
      async (db) => nameOf(db),
      (answer) => answer === "primary",
    ),
    "primary",
  );
  assert.deepEqual(seen, ["replica", "primary:behind"]);
});

test("a failing replica rests: reads go to the primary, then one probe finds it back", async () => {
  const { reads, seen } = router(50);
  let replicaUp = false;
  const query = async (db: Db) => {
    if (db === replica && !replicaUp) throw new Error("connect ECONNREFUSED");
    return nameOf(db);
  };
  assert.equal(await reads.read("search", query), "primary");
  assert.equal(await reads.read("search", query), "primary");
  assert.deepEqual(seen, ["primary:error", "primary:down"]);
  replicaUp = true;
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(await reads.read("search", query), "replica");
  assert.equal(await reads.read("search", query), "replica");
});

test("only one probe at a time while the replica rests", async () => {
  const { reads, seen } = router(10);
  await reads.read("search", async (db) => {
    if (db === replica) throw new Error("down");
    return "p";
  });
  await new Promise((resolve) => setTimeout(resolve, 20));
  let release!: () => void;
  const slow = new Promise<void>((resolve) => (release = resolve));
  const probe = reads.read("search", async (db) => {
    if (db === replica) await slow;
    return nameOf(db);
  });
  assert.equal(await reads.read("search", async (db) => nameOf(db)), "primary", "a read during the probe");
  release();
  assert.equal(await probe, "replica");
  assert.deepEqual(seen, ["primary:error", "primary:down", "replica"]);
});

test("a refusal of the request itself is thrown as it is, and the replica is not rested", async () => {
  const { reads, seen } = router();
  await assert.rejects(
    reads.read("history", async () => {
      throw notFound();
    }),
    /conversation not found/,
  );
  assert.equal(await reads.read("history", async (db) => nameOf(db)), "replica");
  assert.deepEqual(seen, ["replica"]);
});

test("a history page is complete when it reaches what the primary could have answered", () => {
  const rows = (...seqs: number[]) => seqs.map((seq) => ({ seq }));
  // Newest page, last_seq 5: must start at 5.
  assert.equal(reachesWatermark(rows(5, 4, 3), undefined, undefined, 3, 5), true);
  assert.equal(reachesWatermark(rows(3, 2, 1), undefined, undefined, 3, 5), false);
  // Before 4: must start at 3, whatever came later.
  assert.equal(reachesWatermark(rows(3, 2), undefined, 4, 3, 9), true);
  assert.equal(reachesWatermark(rows(2, 1), undefined, 4, 3, 9), false);
  // Gap fill after 3, take 3, last_seq 5: must reach 5; last_seq 10: must reach 6 (a full page and its probe row).
  assert.equal(reachesWatermark(rows(4, 5), 3, undefined, 3, 5), true);
  assert.equal(reachesWatermark(rows(4), 3, undefined, 3, 5), false);
  assert.equal(reachesWatermark(rows(), 3, undefined, 3, 5), false);
  assert.equal(reachesWatermark(rows(4, 5, 6), 3, undefined, 3, 10), true);
  assert.equal(reachesWatermark(rows(4, 5), 3, undefined, 3, 10), false);
  // Nothing to expect: an empty conversation, or a cursor already at the end.
  assert.equal(reachesWatermark(rows(), undefined, undefined, 51, 0), true);
  assert.equal(reachesWatermark(rows(), 5, undefined, 51, 5), true);
});
