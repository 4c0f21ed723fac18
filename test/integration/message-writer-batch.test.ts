// The batched writer in process, on the real PostgreSQL and on embedded PGlite: many sends in one statement, with
// the rules each send must keep whatever its neighbours do (gapless seqs, idempotent retries, repeats within a batch,
// membership, system senders).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { MessageWriter, type SendRequest, type StoredSend } from "../../src/chat/message-writer.js";
import { createDatabase, type Database } from "../../src/db/client.js";
import { applyMigrations } from "../../src/db/migrate.js";
import { createScratchDatabase } from "../helpers/gateways.js";

async function seed(database: Database) {
  const [alice, bob, carol, system] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
  await database.prisma.user.createMany({
    data: [
      { id: alice, username: `a${alice.slice(0, 8)}`, displayName: "Alice", passwordHash: "x" },
      { id: bob, username: `b${bob.slice(0, 8)}`, displayName: "Bob", passwordHash: "x" },
      { id: carol, username: `c${carol.slice(0, 8)}`, displayName: "Carol", passwordHash: "x" },
      { id: system, username: `system:${system.slice(0, 8)}`, displayName: "Bot", passwordHash: "x", isSystem: true },
    ],
  });
  const group = randomUUID();
  const direct = randomUUID();
  await database.prisma.conversation.create({
    data: {
      id: group,
      type: "group",
      title: "g",
      members: { create: [{ userId: alice, role: "admin" }, { userId: bob }, { userId: carol, muted: true }] },
    },
  });
  await database.prisma.conversation.create({
    data: {
      id: direct,
      type: "direct",
      directKey: `${alice}:${bob}`,
      members: { create: [{ userId: alice }, { userId: bob }] },
    },
  });
  return { alice, bob, carol, system, group, direct };
}

/** Writes every request at once, so they share batches, and answers each outcome in order. */
function writeAll(writer: MessageWriter, requests: SendRequest[]) {
  return Promise.allSettled(requests.map((r) => writer.write(r)));
}

function stored(outcome: PromiseSettledResult<StoredSend> | undefined): StoredSend {
  assert.equal(outcome?.status, "fulfilled", outcome?.status === "rejected" ? String(outcome.reason) : "");
  return (outcome as PromiseFulfilledResult<StoredSend>).value;
}

for (const kind of ["postgres", "pglite"] as const) {
  describe(`message writer on ${kind}`, () => {
    let database: Database;
    let cleanup: () => Promise<void>;

    before(async () => {
      if (kind === "postgres") {
        const scratch = await createScratchDatabase();
        database = await createDatabase({ databaseUrl: scratch.url, dataDir: "unused" });
        cleanup = async () => {
          await database.close();
          await scratch.drop();
        };
      } else {
        const dir = mkdtempSync(join(tmpdir(), "writer-"));
        database = await createDatabase({ dataDir: dir });
        cleanup = async () => {
          await database.close();
          rmSync(dir, { recursive: true, force: true });
        };
      }
      await applyMigrations(database);
    });
    after(() => cleanup());

    test("one batch keeps every send's rules, whatever its neighbours", async () => {
      const { alice, bob, carol, system, group, direct } = await seed(database);
      // A large batch: the first send leaves alone, the other 119 gather behind it.
      const writer = new MessageWriter(database.sql, { maxBatch: 256 });
      const requests: SendRequest[] = [];
      for (let i = 0; i < 40; i++) {
        requests.push({
          conversationId: group,
          senderId: [alice, bob, carol][i % 3]!,
          clientMsgId: `g-${i}`,
          content: `g${i}`,
        });
        requests.push({
          conversationId: direct,
          senderId: [alice, bob][i % 2]!,
          clientMsgId: `d-${i}`,
          content: `d${i}`,
        });
      }
      requests.push({ conversationId: direct, senderId: carol, clientMsgId: "intruder", content: "not a member" });
      requests.push({ conversationId: randomUUID(), senderId: alice, clientMsgId: "nowhere", content: "no such" });
      requests.push({ conversationId: group, senderId: alice, clientMsgId: "g-0", content: "repeat in batch" });
      requests.push({
        conversationId: group,
        senderId: system,
        clientMsgId: "bot-1",
        content: "hello",
        systemSender: true,
      });
      requests.push({
        conversationId: direct,
        senderId: system,
        clientMsgId: "bot-2",
        content: "x",
        systemSender: false,
      });
      const outcomes = await writeAll(writer, requests);

      const created = outcomes.slice(0, 80).map(stored);
      assert.ok(created.every((s) => s.created));
      for (const conversationId of [group, direct]) {
        const seqs = created.filter((s) => s.message.conversationId === conversationId).map((s) => s.message.seq);
        assert.deepEqual(
          [...seqs].sort((a, b) => a - b),
          Array.from({ length: 40 }, (_, i) => i + 1),
          "gapless",
        );
        // Within one conversation, seqs follow the order sends were written.
        assert.deepEqual(
          seqs,
          [...seqs].sort((a, b) => a - b),
        );
      }
      const groupSend = created[0]!;
      assert.deepEqual(
        groupSend.members.map((m) => [m.userId, m.muted]).sort(),
        [
          [alice, false],
          [bob, false],
          [carol, true],
        ].sort(),
      );
      assert.equal(groupSend.message.content, "g0");
      assert.equal(groupSend.message.clientMsgId, "g-0");
      assert.ok(!Number.isNaN(Date.parse(groupSend.message.createdAt)));

      for (const i of [80, 81, 84]) {
        const outcome = outcomes[i]!;
        assert.equal(outcome.status, "rejected");
        assert.equal((outcome as PromiseRejectedResult).reason.code, "not_found");
      }
      const repeat = stored(outcomes[82]);
      assert.equal(repeat.created, false);
      assert.equal(repeat.message.id, groupSend.message.id);
      const bot = stored(outcomes[83]);
      assert.equal(bot.created, true);
      assert.equal(bot.message.seq, 41);

      // Retried later: the stored message, nothing new, and its own conversation's members.
      const retry = stored((await writeAll(writer, [{ ...requests[1]!, conversationId: group }]))[0]);
      assert.equal(retry.created, false);
      assert.equal(retry.message.conversationId, direct);
      assert.equal(retry.message.content, "d0");
      assert.equal(retry.members.length, 2);

      const rows = await database.sql<{ last_seq: number; read_seq: number }>(
        `SELECT c.last_seq, m.read_seq FROM conversations c JOIN members m ON m.conversation_id = c.id
          WHERE c.id = $1::uuid AND m.user_id = $2::uuid`,
        [group, carol],
      );
      assert.equal(Number(rows[0]!.last_seq), 41);
      // Sending moves the sender's own read marker to its last message (carol sent g-38, seq 39).
      assert.equal(Number(rows[0]!.read_seq), 39);
    });
  });
}
