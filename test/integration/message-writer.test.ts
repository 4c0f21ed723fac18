// The batched writer in process, over a real PostgreSQL scratch database: one send the database refuses for its own
// data fails alone (not the 50 batched with it), and past capacity sends are refused at once rather than queued.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { MessageWriter, type RefusalReason, type SendRequest, type StoredSend } from "../../src/chat/message-writer.js";
import { createDatabase, type Database } from "../../src/db/client.js";
import { applyMigrations } from "../../src/db/migrate.js";
import { AppError, toWireError } from "../../src/errors.js";
import { createScratchDatabase } from "../helpers/gateways.js";

type Outcome = { ok: true; stored: StoredSend } | { ok: false; error: unknown };

const settle = (p: Promise<StoredSend>): Promise<Outcome> =>
  p.then(
    (stored) => ({ ok: true as const, stored }),
    (error: unknown) => ({ ok: false as const, error }),
  );

describe("message writer", () => {
  let scratch: { url: string; drop(): Promise<void> };
  let database: Database;
  /** Conversations, each with its one member (the sender). */
  const conversations: { id: string; userId: string }[] = [];

  before(async () => {
    scratch = await createScratchDatabase();
    database = await createDatabase({
      databaseUrl: scratch.url,
      dataDir: "unused",
      timeouts: { statementMs: 5_000, lockMs: 1_000, queryMs: 6_000, connectMs: 2_000 },
    });
    await applyMigrations(database);
    for (let i = 0; i < 6; i++) {
      const userId = randomUUID();
      const id = randomUUID();
      await database.prisma.$executeRawUnsafe(
        `INSERT INTO users (id, username, display_name, password_hash) VALUES ($1::uuid, $2, $2, 'x')`,
        userId,
        `writer${i}_${userId.slice(0, 8)}`,
      );
      await database.prisma.$executeRawUnsafe(
        `INSERT INTO conversations (id, type, title) VALUES ($1::uuid, 'group', 'g')`,
        id,
      );
      await database.prisma.$executeRawUnsafe(
        `INSERT INTO members (conversation_id, user_id) VALUES ($1::uuid, $2::uuid)`,
        id,
        userId,
      );
      conversations.push({ id, userId });
    }
  });
  after(async () => {
    await database?.close();
    await scratch?.drop();
  });

  const send = (i: number, clientMsgId: string, content = `m${clientMsgId}`): SendRequest => {
    const c = conversations[i % 5]!;
    return { conversationId: c.id, senderId: c.userId, clientMsgId, content };
  };

  async function storedCount(): Promise<number> {
    const [row] = await database.prisma.$queryRawUnsafe<{ n: number }[]>(`SELECT count(*)::int AS n FROM messages`);
    return row!.n;
  }

  for (const poison of ["clientMsgId", "content"] as const) {
    test(`a send with a NUL in its ${poison} fails alone, bad_request; the 50 batched with it commit`, async () => {
      const writer = new MessageWriter(database.sql);
      const before = await storedCount();
      const tag = randomUUID().slice(0, 8);
      // The first send of an idle writer leaves alone; everything written while it is in flight forms the next batch.
      const opener = settle(writer.write(send(0, `${tag}-opener`)));
      const good = Array.from({ length: 50 }, (_, i) => send(i, `${tag}-good-${i}`));
      const bad =
        poison === "clientMsgId" ? send(5, `${tag}-bad\u0000`) : send(5, `${tag}-bad`, "poisoned \u0000 content");
      const outcomes = await Promise.all([
        ...good.slice(0, 25).map((r) => settle(writer.write(r))),
        settle(writer.write(bad)),
        ...good.slice(25).map((r) => settle(writer.write(r))),
      ]);
      assert.equal((await opener).ok, true);
      const badOutcome = outcomes.splice(25, 1)[0]!;
      assert.equal(badOutcome.ok, false, "the poisoned send fails");
      if (!badOutcome.ok) {
        // It reached PostgreSQL (the schema would have stopped it before): a driver error, not one of ours...
        assert.ok(!(badOutcome.error instanceof AppError), "refused by the database, not by the writer");
        // ...that the client sees as its own fault.
        const wire = toWireError(badOutcome.error);
        assert.equal(wire.error.code, "bad_request");
        assert.equal(wire.status, 400);
        assert.equal(wire.isBug, false);
      }
      assert.deepEqual(
        outcomes.map((o) => o.ok),
        good.map(() => true),
        "every good send commits",
      );
      assert.equal(await storedCount(), before + 51, "the opener and the 50 good sends are stored");
      await writer.idle();
    });
  }

  test("past capacity: a full queue and an old queue refuse at once, expired sends are not written", async () => {
    const maxQueue = 20;
    const maxWaitMs = 300;
    const writer = new MessageWriter(database.sql, { maxQueue, maxWaitMs, stuckAfterMs: 200 });
    const refusals: RefusalReason[] = [];
    writer.onRefused((reason) => refusals.push(reason));
    const target = conversations[0]!;
    const tag = randomUUID().slice(0, 8);
    const before = await storedCount();

    // Hold the conversation's row lock, as a long transaction elsewhere would: the writer's batch waits on it.
    const holder = new pg.Client({ connectionString: scratch.url });
    await holder.connect();
    await holder.query("BEGIN");
    await holder.query("SELECT id FROM conversations WHERE id = $1 FOR UPDATE", [target.id]);
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      await holder.query("ROLLBACK");
      await holder.end();
    };
    try {
      const request = (n: string): SendRequest => ({
        conversationId: target.id,
        senderId: target.userId,
        clientMsgId: `${tag}-${n}`,
        content: n,
      });
      const blocked = settle(writer.write(request("blocked")));
      const queued = Array.from({ length: maxQueue }, (_, i) => settle(writer.write(request(`q${i}`))));
      // The queue is full: refused synchronously-fast, before any database work.
      const started = performance.now();
      const full = await settle(writer.write(request("over")));
      assert.ok(performance.now() - started < 100, "a refusal is answered at once");
      assert.equal(full.ok, false);
      if (!full.ok) {
        const wire = toWireError(full.error).error;
        assert.equal(wire.code, "unavailable");
        const retryAfterMs = (wire.details as { retryAfterMs: number }).retryAfterMs;
        assert.ok(retryAfterMs >= 200 && retryAfterMs <= 1000, String(retryAfterMs));
      }
      await new Promise((r) => setTimeout(r, maxWaitMs + 100));
      const health = writer.health();
      assert.equal(health.stuck, true, "a batch stuck on the lock and an old queue mark the writer stuck");
      assert.ok(health.oldestQueuedMs > maxWaitMs);
      // Not full any more would not matter: the oldest queued send is past the deadline, so a new one would be too.
      const late = await settle(writer.write(request("late")));
      assert.equal(late.ok, false);
      assert.deepEqual(refusals, ["queue_full", "wait"]);

      // The blocked batch hits lock_timeout (1 s here): unavailable, and then the queued sends are past their
      // deadline, so they are failed without being written.
      const blockedOutcome = await blocked;
      assert.equal(blockedOutcome.ok, false);
      if (!blockedOutcome.ok) assert.equal(toWireError(blockedOutcome.error).error.code, "unavailable");
      const queuedOutcomes = await Promise.all(queued);
      for (const o of queuedOutcomes) {
        assert.equal(o.ok, false);
        if (!o.ok) assert.equal(toWireError(o.error).error.code, "unavailable");
      }
      assert.equal(refusals.filter((r) => r === "expired").length, maxQueue);
      await release();
      assert.equal(await storedCount(), before, "nothing refused or expired was written");

      // Capacity is back: the same clientMsgIds go through, once each.
      const retried = await Promise.all([request("blocked"), request("q0")].map((r) => settle(writer.write(r))));
      assert.deepEqual(
        retried.map((o) => o.ok),
        [true, true],
      );
      assert.equal(await storedCount(), before + 2);
      assert.equal(writer.health().stuck, false);
    } finally {
      await release();
    }
  });
  test("two batches in flight: a conversation held by the first waits, in order; the others go past it", async () => {
    const writer = new MessageWriter(database.sql, { concurrency: 2, maxWaitMs: 10_000 });
    const [held, free] = [conversations[4]!, conversations[5]!];
    const tag = randomUUID().slice(0, 8);
    const request = (c: { id: string; userId: string }, n: string): SendRequest => ({
      conversationId: c.id,
      senderId: c.userId,
      clientMsgId: `${tag}-${n}`,
      content: n,
    });
    // Another transaction holds the first conversation's row: its batch stays in flight until released.
    const holder = new pg.Client({ connectionString: scratch.url });
    await holder.connect();
    await holder.query("BEGIN");
    await holder.query("SELECT id FROM conversations WHERE id = $1 FOR UPDATE", [held.id]);
    try {
      const first = writer.write(request(held, "h0"));
      // Queued behind the held batch: the same conversation waits (a conversation is in one batch at a time)...
      const laterHeld = ["h1", "h2", "h3"].map((n) => writer.write(request(held, n)));
      // ...while the other conversation's sends take the second slot and commit though the first batch is stuck.
      const others = await Promise.all(["f0", "f1", "f2"].map((n) => writer.write(request(free, n))));
      assert.deepEqual(
        others.map((o) => o.message.seq - others[0]!.message.seq),
        [0, 1, 2],
        "the free conversation's sends commit in arrival order while the other batch is held",
      );
      assert.equal(writer.health().inFlightMs > 0, true, "the held batch is still in flight");
      await holder.query("ROLLBACK");
      const heldSeqs = (await Promise.all([first, ...laterHeld])).map((o) => o.message.seq);
      assert.deepEqual(
        heldSeqs.map((seq) => seq - heldSeqs[0]!),
        [0, 1, 2, 3],
        "the held conversation's sends keep arrival order across batches",
      );
    } finally {
      await holder.end();
    }
  });

  /** A send never written before, into the fourth conversation. */
  const freshSend = (content: string): SendRequest => ({
    conversationId: conversations[3]!.id,
    senderId: conversations[3]!.userId,
    clientMsgId: `fresh-${randomUUID()}`,
    content,
  });

  test("a late event loop refuses sends at once, counted as loop_lag; on time again, they are written", async () => {
    const loopLag = { lagMs: 500 };
    const writer = new MessageWriter(database.sql, {
      backlogs: [{ reason: "loop_lag", gauge: loopLag, maxMs: 150 }],
    });
    const refusals: RefusalReason[] = [];
    writer.onRefused((reason) => refusals.push(reason));
    const request = freshSend("late loop");
    const early = writer.admission();
    assert.ok(early instanceof AppError, "admission answers before any send is queued");
    assert.equal(toWireError(early).error.code, "unavailable");
    const refused = await settle(writer.write(request));
    assert.equal(refused.ok, false);
    assert.deepEqual(refusals, ["loop_lag", "loop_lag"]);
    loopLag.lagMs = 20;
    assert.equal(writer.admission(), undefined);
    const written = await settle(writer.write(request));
    assert.equal(written.ok, true);
    if (written.ok) assert.equal(written.stored.created, true, "the refused send was never written");
  });

  test("a fan-out behind Redis refuses sends at once, counted as publish_lag; caught up, they are written", async () => {
    const publishLag = { lagMs: 400 };
    const writer = new MessageWriter(database.sql, {
      backlogs: [{ reason: "publish_lag", gauge: publishLag, maxMs: 100 }],
    });
    const refusals: RefusalReason[] = [];
    writer.onRefused((reason) => refusals.push(reason));
    const request = freshSend("behind redis");
    const refused = await settle(writer.write(request));
    assert.equal(refused.ok, false);
    if (!refused.ok) {
      const wire = toWireError(refused.error).error;
      assert.equal(wire.code, "unavailable");
      assert.ok(
        Number((wire.details as { retryAfterMs?: number } | undefined)?.retryAfterMs) > 0,
        "the refusal says when to retry",
      );
    }
    assert.deepEqual(refusals, ["publish_lag"]);
    publishLag.lagMs = 5;
    const written = await settle(writer.write(request));
    assert.equal(written.ok, true);
    if (written.ok) assert.equal(written.stored.created, true, "the refused send was never written");
  });
});
