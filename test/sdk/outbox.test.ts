import assert from "node:assert/strict";
import { test } from "node:test";
import type { Message } from "@chat-gateway/protocol";
import { unchangedFields } from "../../src/chat/message-rows.js";
import { backoffDelay, retryDelay } from "../../packages/sdk/src/backoff.js";
import { ChatApiError, type ChatErrorCode } from "../../packages/sdk/src/errors.js";
import { Outbox, type OutboxOptions } from "../../packages/sdk/src/outbox.js";
import { CoalescingWriter, MemoryOutboxStorage, type OutboxEntry } from "../../packages/sdk/src/storage.js";
import { FakeClock, settle } from "./fake-clock.js";

const UNCHANGED = unchangedFields();

const stored = (entry: OutboxEntry, seq: number): Message => ({
  id: `m-${entry.clientMsgId}`,
  conversationId: entry.conversationId,
  seq,
  senderId: "me",
  clientMsgId: entry.clientMsgId,
  content: entry.content,
  createdAt: new Date(0).toISOString(),
  ...UNCHANGED,
});

/** A transmit whose answers the test decides, one call at a time. */
function scriptedTransmit() {
  const calls: { entry: OutboxEntry; resolve: (m: Message) => void; reject: (e: unknown) => void }[] = [];
  const transmit = (entry: OutboxEntry) =>
    new Promise<Message>((resolve, reject) => calls.push({ entry, resolve, reject }));
  return { calls, transmit };
}

function makeOutbox(overrides: Partial<OutboxOptions> & Pick<OutboxOptions, "transmit">) {
  const clock = new FakeClock();
  const sent: string[] = [];
  const failed: { content: string; code: string }[] = [];
  const outbox = new Outbox({
    clock,
    random: () => 0.5,
    onSent: (entry) => sent.push(entry.content),
    onFailed: (entry, error) => failed.push({ content: entry.content, code: error.code }),
    ...overrides,
  });
  return { outbox, clock, sent, failed };
}

test("retry policy: the request's own faults are final, everything else is retried", () => {
  const permanent: ChatErrorCode[] = ["bad_request", "payload_too_large", "not_found", "forbidden", "conflict"];
  for (const code of permanent) assert.equal(retryDelay(new ChatApiError(code, code), 1), null, code);
  const transient: ChatErrorCode[] = ["unavailable", "internal", "timeout", "network_error", "unauthorized"];
  for (const code of transient) {
    const delay = retryDelay(new ChatApiError(code, code), 1, {}, () => 0);
    assert.equal(typeof delay, "number", code);
  }
});

test("retry policy: rate_limited waits exactly what the server asked", () => {
  const error = new ChatApiError("rate_limited", "slow down", { details: { retryAfterMs: 1234 } });
  assert.equal(error.status, 429);
  assert.equal(retryDelay(error, 7), 1234);
  // Without the detail it falls back to backoff.
  assert.equal(
    retryDelay(new ChatApiError("rate_limited", "x"), 1, {}, () => 1),
    500,
  );
});

test("backoff doubles from 500 ms up to 30 s, with half of each delay random", () => {
  assert.deepEqual(
    [1, 2, 3, 4].map((n) => backoffDelay(n, {}, () => 1)),
    [500, 1000, 2000, 4000],
  );
  assert.equal(
    backoffDelay(20, {}, () => 1),
    30_000,
  );
  assert.equal(
    backoffDelay(20, {}, () => 0),
    15_000,
  );
  for (let i = 0; i < 100; i++) {
    const d = backoffDelay(3);
    assert.ok(d >= 1000 && d <= 2000, String(d));
  }
});

test("one send in flight per conversation, in order; conversations do not wait for each other", async () => {
  const { calls, transmit } = scriptedTransmit();
  const { outbox, sent } = makeOutbox({ transmit });
  outbox.setOnline(true);
  await outbox.enqueue("a", "a1");
  await outbox.enqueue("a", "a2");
  await outbox.enqueue("b", "b1");
  assert.deepEqual(
    calls.map((c) => c.entry.content),
    ["a1", "b1"],
  );
  calls[1]!.resolve(stored(calls[1]!.entry, 1));
  calls[0]!.resolve(stored(calls[0]!.entry, 1));
  await settle();
  assert.deepEqual(
    calls.map((c) => c.entry.content),
    ["a1", "b1", "a2"],
  );
  calls[2]!.resolve(stored(calls[2]!.entry, 2));
  await settle();
  assert.deepEqual(sent, ["b1", "a1", "a2"]);
  assert.deepEqual(outbox.pending(), []);
});

test("a failed send is retried with the same clientMsgId, after a backoff, until acked", async () => {
  const { calls, transmit } = scriptedTransmit();
  const { outbox, clock, sent } = makeOutbox({ transmit });
  outbox.setOnline(true);
  const entry = await outbox.enqueue("a", "hello");
  calls[0]!.reject(new ChatApiError("unavailable", "draining"));
  await settle();
  assert.equal(calls.length, 1, "waits before retrying");
  // First backoff: half of 500 ms fixed, half random (0.5 here): 375 ms.
  await clock.advance(374);
  assert.equal(calls.length, 1);
  await clock.advance(1);
  assert.equal(calls.length, 2);
  calls[1]!.reject(new ChatApiError("timeout", "no ack"));
  await clock.advance(1000);
  assert.equal(calls.length, 3);
  calls[2]!.resolve(stored(calls[2]!.entry, 1));
  await settle();
  assert.deepEqual(
    calls.map((c) => c.entry.clientMsgId),
    [entry.clientMsgId, entry.clientMsgId, entry.clientMsgId],
  );
  assert.deepEqual(sent, ["hello"]);
});

test("rate_limited holds the conversation for retryAfterMs", async () => {
  const { calls, transmit } = scriptedTransmit();
  const { outbox, clock } = makeOutbox({ transmit });
  outbox.setOnline(true);
  await outbox.enqueue("a", "x");
  calls[0]!.reject(new ChatApiError("rate_limited", "slow", { details: { retryAfterMs: 5000 } }));
  await clock.advance(4999);
  assert.equal(calls.length, 1);
  // A reconnection meanwhile does not jump the server's wait.
  outbox.setOnline(false);
  outbox.setOnline(true);
  await settle();
  assert.equal(calls.length, 1);
  await clock.advance(1);
  assert.equal(calls.length, 2);
});

test("unavailable with retryAfterMs (a pod over capacity) holds the conversation for that long", async () => {
  const refusal = new ChatApiError("unavailable", "busy", { details: { retryAfterMs: 700 } });
  assert.equal(retryDelay(refusal, 1), 700);
  assert.equal(retryDelay(refusal, 9), 700, "the server's wait, not the growing backoff");
  const { calls, transmit } = scriptedTransmit();
  const { outbox, clock, sent } = makeOutbox({ transmit });
  outbox.setOnline(true);
  await outbox.enqueue("a", "x");
  calls[0]!.reject(refusal);
  await clock.advance(699);
  assert.equal(calls.length, 1);
  // A reconnection meanwhile does not jump the server's wait either (it may be the same busy pod).
  outbox.setOnline(false);
  outbox.setOnline(true);
  await settle();
  assert.equal(calls.length, 1);
  await clock.advance(1);
  assert.equal(calls.length, 2);
  assert.equal(calls[1]!.entry.clientMsgId, calls[0]!.entry.clientMsgId);
  calls[1]!.resolve(stored(calls[1]!.entry, 1));
  await settle();
  assert.deepEqual(sent, ["x"]);
  // Without the detail (a draining pod), unavailable keeps the ordinary backoff.
  assert.equal(
    retryDelay(new ChatApiError("unavailable", "draining"), 1, {}, () => 1),
    500,
  );
});

test("a refused send fails for good, is reported, and does not block the next one", async () => {
  const { calls, transmit } = scriptedTransmit();
  const { outbox, failed, sent } = makeOutbox({ transmit });
  outbox.setOnline(true);
  await outbox.enqueue("a", "too long");
  await outbox.enqueue("a", "fine");
  calls[0]!.reject(new ChatApiError("payload_too_large", "content is too long"));
  await settle();
  assert.deepEqual(failed, [{ content: "too long", code: "payload_too_large" }]);
  assert.equal(calls.length, 2);
  calls[1]!.resolve(stored(calls[1]!.entry, 1));
  await settle();
  assert.deepEqual(sent, ["fine"]);
  assert.deepEqual(outbox.pending(), []);
});

test("offline, nothing is sent; a reconnection retries at once what the disconnection cut off", async () => {
  const { calls, transmit } = scriptedTransmit();
  const { outbox } = makeOutbox({ transmit });
  await outbox.enqueue("a", "queued while offline");
  assert.equal(calls.length, 0);
  outbox.setOnline(true);
  assert.equal(calls.length, 1);
  // The connection drops with the ack outstanding.
  outbox.setOnline(false);
  calls[0]!.reject(new ChatApiError("timeout", "socket has been disconnected"));
  await settle();
  assert.equal(calls.length, 1);
  outbox.setOnline(true);
  assert.equal(calls.length, 2);
  assert.equal(calls[1]!.entry.clientMsgId, calls[0]!.entry.clientMsgId);
  assert.equal(calls[1]!.entry.attempts, 2);
});

test("entries are in storage once enqueue resolves, leave it when acked, and a new run resends them first", async () => {
  const storage = new MemoryOutboxStorage();
  const first = scriptedTransmit();
  const run1 = makeOutbox({ transmit: first.transmit, storage });
  const kept = await run1.outbox.enqueue("a", "survives a restart");
  await run1.outbox.enqueue("b", "acked");
  run1.outbox.setOnline(true);
  first.calls[1]!.resolve(stored(first.calls[1]!.entry, 1));
  await settle();
  await run1.outbox.close(); // the app is killed with "survives a restart" still unacked
  assert.deepEqual(
    (await storage.load()).map((e) => e.content),
    ["survives a restart"],
  );

  const second = scriptedTransmit();
  const run2 = makeOutbox({ transmit: second.transmit, storage });
  await run2.outbox.enqueue("a", "typed after the restart");
  run2.outbox.setOnline(true);
  assert.deepEqual(
    second.calls.map((c) => c.entry.clientMsgId),
    [kept.clientMsgId],
  );
  second.calls[0]!.resolve(stored(second.calls[0]!.entry, 1));
  await settle();
  assert.deepEqual(
    second.calls.map((c) => c.entry.content),
    ["survives a restart", "typed after the restart"],
  );
});

test("cancel drops an unsent entry from memory and storage", async () => {
  const storage = new MemoryOutboxStorage();
  const { transmit } = scriptedTransmit();
  const { outbox } = makeOutbox({ transmit, storage });
  const entry = await outbox.enqueue("a", "never mind");
  assert.equal(await outbox.cancel(entry.clientMsgId), true);
  assert.equal(await outbox.cancel(entry.clientMsgId), false);
  assert.deepEqual(await storage.load(), []);
});

test("storage writes never overlap and the last state wins", async () => {
  let state = 0;
  let running = 0;
  let maxRunning = 0;
  const saved: number[] = [];
  const writer = new CoalescingWriter(
    () => state,
    async (value: number) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      saved.push(value);
      running--;
    },
    (error) => assert.fail(String(error)),
  );
  const writes: Promise<void>[] = [];
  for (let i = 1; i <= 10; i++) {
    state = i;
    writes.push(writer.write());
  }
  await Promise.all(writes);
  assert.equal(maxRunning, 1);
  assert.equal(saved.at(-1), 10);
  assert.ok(saved.length <= 2, `coalesced into ${saved.length} saves`);
});
