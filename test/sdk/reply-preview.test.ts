// A reply's preview, as an app holds it: a copy of the reply that arrives after a later edit (or deletion) of the
// message it answers (a coalesced reaction event, or one from another pod) carries the older preview; the answered
// message the app holds wins.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Message, withHeldPreview } from "@chat-gateway/sdk";

const message = (over: Partial<Message>): Message => ({
  id: "m",
  conversationId: "c",
  seq: 1,
  senderId: "u",
  clientMsgId: "k",
  content: "",
  createdAt: "2026-12-02T00:00:00.000Z",
  editedAt: null,
  deletedAt: null,
  replyTo: null,
  reactions: [],
  attachments: [],
  changeSeq: 0,
  ...over,
});

test("a late copy of a reply shows the held answered message's current preview", () => {
  const answered = message({ id: "a", seq: 1, content: "answered, then edited", changeSeq: 9 });
  const lateReply = message({
    id: "r",
    seq: 2,
    replyTo: { id: "a", seq: 1, senderId: "u", content: "edit 8" },
    changeSeq: 7,
  });
  const held = new Map([[answered.id, answered]]);
  assert.equal(withHeldPreview(lateReply, (id) => held.get(id)).replyTo?.content, "answered, then edited");
  const deleted = { ...answered, content: "", deletedAt: "2026-12-02T00:00:01.000Z" };
  assert.equal(withHeldPreview(lateReply, (id) => (id === "a" ? deleted : undefined)).replyTo?.content, "");
});

test("without the answered message, or for a message that answers nothing, the gateway's copy stands", () => {
  const reply = message({ id: "r", replyTo: { id: "a", seq: 1, senderId: "u", content: "as sent" } });
  assert.equal(
    withHeldPreview(reply, () => undefined),
    reply,
  );
  const plain = message({ id: "p" });
  assert.equal(
    withHeldPreview(plain, () => message({ id: "x" })),
    plain,
  );
});
