// The writer's failure handling against a scripted database: which failures are retried, bisected or final.
import assert from "node:assert/strict";
import { test } from "node:test";
import { MessageWriter, type SendRequest } from "../../src/chat/message-writer.js";
import type { Db } from "../../src/db/client.js";
import { toWireError } from "../../src/errors.js";

const CONVERSATION = "00000000-0000-4000-8000-000000000001";
const SENDER = "00000000-0000-4000-8000-000000000002";

/** PostgreSQL's answers as the Prisma 7 pg adapter raises them. */
const dbError = (sqlstate: string, kind = "postgres") =>
  Object.assign(new Error("Raw query failed"), {
    code: "P2010",
    meta: { driverAdapterError: { cause: { kind, originalCode: sqlstate } } },
  });

/**
 * A database that answers the writer's two statements: the read (members, no stored sends) and the write (one row per
 * insert). `fail` may throw for a write, given the contents in it.
 */
function scriptedDb(fail: (contents: string[], writeNumber: number) => void) {
  let writes = 0;
  const db = {
    $queryRawUnsafe: async (sql: string, ...params: unknown[]) => {
      if (sql.includes("FROM members")) return [{ conversation_id: CONVERSATION, user_id: SENDER, muted: false }];
      if (sql.includes("unnest($1::uuid[], $2::text[])")) return [];
      writes++;
      const ids = params[2] as string[];
      const contents = params[6] as string[];
      fail(contents, writes);
      return ids.map((id, i) => ({ id, seq: i + 1, created_at: new Date() }));
    },
  };
  return { db: db as unknown as Db, writes: () => writes };
}

const request = (content: string): SendRequest => ({
  conversationId: CONVERSATION,
  senderId: SENDER,
  clientMsgId: content,
  content,
});

async function writeTogether(writer: MessageWriter, contents: string[]) {
  // The first send of an idle writer leaves alone; the rest queue behind it and form one batch.
  const all = [request("opener"), ...contents.map(request)].map((r) =>
    writer.write(r).then(
      () => "ok",
      (err: unknown) => toWireError(err).error.code,
    ),
  );
  return (await Promise.all(all)).slice(1);
}

test("any failure but unavailability is bisected: the one bad send fails alone, with its own code", async () => {
  const { db, writes } = scriptedDb((contents) => {
    if (contents.includes("bad")) throw dbError("22021");
  });
  const contents = Array.from({ length: 32 }, (_, i) => (i === 19 ? "bad" : `good${i}`));
  const outcomes = await writeTogether(new MessageWriter(db), contents);
  assert.deepEqual(
    outcomes,
    contents.map((c) => (c === "bad" ? "bad_request" : "ok")),
  );
  // One batch of 32 failed; bisection found the bad one in about 2 * log2(32) more statements, not 32.
  assert.ok(writes() <= 2 + 2 * 5 + 1, `${writes()} writes`);
});

test("a deadlock is retried, not answered unavailable", async () => {
  const { db } = scriptedDb((_contents, n) => {
    if (n === 2) throw dbError("40P01", "TransactionWriteConflict");
  });
  assert.deepEqual(await writeTogether(new MessageWriter(db), ["a", "b"]), ["ok", "ok"]);
});

test("the database unavailable (a lock timeout) fails the batch at once, without bisecting", async () => {
  const { db, writes } = scriptedDb((_contents, n) => {
    if (n === 2) throw dbError("55P03");
  });
  assert.deepEqual(await writeTogether(new MessageWriter(db), ["a", "b", "c", "d"]), [
    "unavailable",
    "unavailable",
    "unavailable",
    "unavailable",
  ]);
  assert.equal(writes(), 2);
});
