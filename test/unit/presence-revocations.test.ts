// The per-pod side of presence revocations, in process: unwatch drops exactly the watches of the named watching user
// on the named user, on every socket of that watcher, and leaves everyone else's (the cross-pod path, over Redis, is
// in test/realtime/message-requests.test.ts and blocking.test.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { PresenceChange } from "../../src/presence/store.js";
import { MemoryRevocations } from "../../src/presence/revocations.js";
import { PresenceSubscriptions } from "../../src/presence/subscriptions.js";

function socket(id: string, userId: string) {
  const received: PresenceChange[] = [];
  return {
    id,
    data: { userId },
    received,
    emit: (_event: "presence", change: PresenceChange) => received.push(change),
  };
}
const change = (userId: string): PresenceChange => ({ userId, online: true, lastSeenAt: null });

test("unwatch drops the pair's watches on every socket of the watcher, and nothing else", async () => {
  const subscriptions = new PresenceSubscriptions();
  const revocations = new MemoryRevocations();
  await revocations.onRevoked((pairs) => subscriptions.unwatch(pairs));
  const alicePhone = socket("a1", "alice");
  const aliceLaptop = socket("a2", "alice");
  const carol = socket("c1", "carol");
  for (const s of [alicePhone, aliceLaptop]) assert.ok(subscriptions.watch(s, ["bob", "dave"]));
  assert.ok(subscriptions.watch(carol, ["bob"]));

  await revocations.publish([{ watcherId: "alice", userId: "bob" }]);
  subscriptions.deliver(change("bob"));
  subscriptions.deliver(change("dave"));
  assert.deepEqual(
    alicePhone.received.map((c) => c.userId),
    ["dave"],
  );
  assert.deepEqual(
    aliceLaptop.received.map((c) => c.userId),
    ["dave"],
  );
  assert.deepEqual(
    carol.received.map((c) => c.userId),
    ["bob"],
    "another watcher of bob keeps watching",
  );

  // Watching again is possible (after an unblock, say), and forgetting a socket still cleans up after an unwatch.
  assert.ok(subscriptions.watch(alicePhone, ["bob"]));
  subscriptions.deliver(change("bob"));
  assert.equal(alicePhone.received.at(-1)?.userId, "bob");
  subscriptions.forget(alicePhone.id);
  subscriptions.forget(aliceLaptop.id);
  subscriptions.deliver(change("dave"));
  assert.equal(alicePhone.received.length, 2);
});
