import assert from "node:assert/strict";
import { test } from "node:test";
import type { Message } from "@chat-gateway/protocol";
import { unchangedFields } from "../../src/chat/message-rows.js";
import { MessageSequencer } from "../../packages/sdk/src/message-sequencer.js";

const UNCHANGED = unchangedFields();

function msg(conversationId: string, seq: number, id = `${conversationId}-${seq}`): Message {
  return {
    id,
    conversationId,
    seq,
    senderId: "u1",
    clientMsgId: `c-${id}`,
    content: `m${seq}`,
    createdAt: new Date(0).toISOString(),
    ...UNCHANGED,
  };
}
const seqs = (messages: Message[]) => messages.map((m) => m.seq);

test("in-order messages are delivered at once and move the cursor", () => {
  const s = new MessageSequencer();
  assert.deepEqual(seqs(s.accept(msg("a", 1))), [1]);
  assert.deepEqual(seqs(s.accept(msg("a", 2))), [2]);
  assert.equal(s.cursor("a"), 2);
  assert.equal(s.gap("a"), null);
});

test("out-of-order messages wait for the hole below them and then leave in seq order", () => {
  const s = new MessageSequencer();
  assert.deepEqual(seqs(s.accept(msg("a", 3))), []);
  assert.deepEqual(seqs(s.accept(msg("a", 5))), []);
  assert.deepEqual(s.gap("a"), { conversationId: "a", fromSeq: 1, toSeq: 2 });
  assert.deepEqual(seqs(s.accept(msg("a", 1))), [1]);
  assert.deepEqual(s.gap("a"), { conversationId: "a", fromSeq: 2, toSeq: 2 });
  assert.deepEqual(seqs(s.accept(msg("a", 2))), [2, 3]);
  assert.deepEqual(s.gap("a"), { conversationId: "a", fromSeq: 4, toSeq: 4 });
  assert.deepEqual(seqs(s.accept(msg("a", 4))), [4, 5]);
  assert.equal(s.cursor("a"), 5);
  assert.equal(s.gap("a"), null);
  assert.equal(s.bufferedCount("a"), 0);
});

test("a message is delivered once however often it arrives (live, sync page, history page)", () => {
  const s = new MessageSequencer();
  const delivered: Message[] = [];
  const feed = (m: Message) => delivered.push(...s.accept(m));
  feed(msg("a", 2));
  feed(msg("a", 2));
  feed(msg("a", 1));
  feed(msg("a", 1));
  feed(msg("a", 2));
  delivered.push(...s.acceptAll([msg("a", 1), msg("a", 2), msg("a", 3)]));
  assert.deepEqual(
    delivered.map((m) => m.id),
    ["a-1", "a-2", "a-3"],
  );
});

test("conversations are sequenced independently", () => {
  const s = new MessageSequencer();
  assert.deepEqual(seqs(s.accept(msg("a", 2))), []);
  assert.deepEqual(seqs(s.accept(msg("b", 1))), [1]);
  assert.equal(s.gap("b"), null);
  assert.deepEqual(s.gap("a"), { conversationId: "a", fromSeq: 1, toSeq: 1 });
  assert.deepEqual(s.cursors(), { a: 0, b: 1 });
});

test("restored cursors skip what the app already has and never move back", () => {
  const s = new MessageSequencer({ a: 10 });
  assert.deepEqual(seqs(s.accept(msg("a", 9))), []);
  assert.deepEqual(seqs(s.accept(msg("a", 11))), [11]);
  s.restore({ a: 5, b: -1, c: 1.5 });
  assert.equal(s.cursor("a"), 11);
  assert.deepEqual(s.cursors(), { a: 11 });
});

test("the buffer is bounded, and a dropped message still counts as missing", () => {
  const s = new MessageSequencer({}, { maxBuffered: 2 });
  s.accept(msg("a", 3));
  s.accept(msg("a", 4));
  s.accept(msg("a", 5)); // over the bound: the highest is dropped
  assert.equal(s.bufferedCount("a"), 2);
  assert.deepEqual(s.gap("a"), { conversationId: "a", fromSeq: 1, toSeq: 2 });
  assert.deepEqual(seqs(s.acceptAll([msg("a", 1), msg("a", 2)])), [1, 2, 3, 4]);
  assert.deepEqual(s.gap("a"), { conversationId: "a", fromSeq: 5, toSeq: 5 });
  assert.deepEqual(seqs(s.accept(msg("a", 5))), [5]);
});
