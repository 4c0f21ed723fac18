// The message writer's statement keeps probing the (sender_id, client_msg_id) index whatever the planner believes of
// the messages table. Its connections use generic plans (src/db/client.ts), made once from the tables' sizes at the
// time: with the idempotency check written as a join, a plan made while the table was new hashed a sequential scan of
// every message, and every batch then read the whole table (4 ms per send at 17,000 rows; the bench's send->ack p50
// at 1000/s fell from 31 to 7.8 ms once it was an index probe).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { inTransaction } from "../../src/db/client.js";
import { WRITE_BATCH_SQL } from "../../src/chat/message-writer.js";
import { type InProcessGateway, startInProcessGateway } from "../helpers/in-process.js";

let gw: InProcessGateway;

before(async () => {
  gw = await startInProcessGateway({ database: "postgres" });
});
after(() => gw?.close());

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Sort Key"?: string[];
  Plans?: PlanNode[];
}

function scansOf(node: PlanNode, out: string[] = []): string[] {
  if (node["Relation Name"] !== undefined) out.push(`${node["Node Type"]} on ${node["Relation Name"]}`);
  for (const child of node.Plans ?? []) scansOf(child, out);
  return out;
}

/** The generic plan of the write statement, made on an empty messages table as the writer's connections make it. */
async function genericWritePlan(): Promise<PlanNode> {
  return inTransaction(gw.database, async (sql) => {
    // A generic plan from the first execution, on a table that is still empty (the planner's estimate for a new
    // table is a few hundred rows at most).
    await sql(`SET LOCAL plan_cache_mode = force_generic_plan`, []);
    await sql(`PREPARE write_plan_probe AS ${WRITE_BATCH_SQL}`, []);
    const none = "'{}'";
    const one = (value: string) => `'{${value}}'`;
    const [row] = await sql<{ "QUERY PLAN": [{ Plan: PlanNode }] }>(
      `EXPLAIN (FORMAT JSON, VERBOSE) EXECUTE write_plan_probe(${one("0")}, ${one(randomUUID())}, ` +
        `${one(randomUUID())}, ${one("c-1")}, ${one("hello")}, ${one("f")}, ${one(randomUUID())}, ${one("NULL")}, ` +
        `${none}, ${none})`,
      [],
    );
    await sql(`DEALLOCATE write_plan_probe`, []);
    return row!["QUERY PLAN"][0].Plan;
  });
}

function nodesOf(node: PlanNode, out: PlanNode[] = []): PlanNode[] {
  out.push(node);
  for (const child of node.Plans ?? []) nodesOf(child, out);
  return out;
}

test("the generic plan of the write statement, made on an empty messages table, probes the index", async () => {
  const scans = scansOf(await genericWritePlan());
  const onMessages = scans.filter((s) => s.endsWith(" on messages"));
  assert.ok(onMessages.length > 0, `the plan reads messages somewhere: ${scans.join(", ")}`);
  assert.deepEqual(
    onMessages.filter((s) => s.startsWith("Seq Scan")),
    [],
    `no sequential scan of messages in the generic plan: ${scans.join(", ")}`,
  );
});

// Member rows are locked in key order everywhere (the marker writer's batches lock theirs that way): a batch that
// updated its senders' rows in whatever order it met them could deadlock with a marker batch, and PostgreSQL breaks
// a deadlock only after deadlock_timeout (1 s), stalling both (seen in the overload bench).
test("the write statement locks the senders' member rows in key order before moving their markers", async () => {
  const locks = nodesOf(await genericWritePlan()).filter((n) => n["Node Type"] === "LockRows");
  const memberLocks = locks.filter((lock) => scansOf(lock).some((s) => s.endsWith(" on members")));
  assert.equal(memberLocks.length, 1, "one row lock step over members");
  const sort = nodesOf(memberLocks[0]!).find((n) => n["Node Type"] === "Sort");
  // The member key, or the sender's columns it was joined on (the planner may sort by either: they are equal).
  const key = (sort?.["Sort Key"] ?? []).map((k) => k.replace(/^\w+\./, ""));
  assert.ok(
    ["conversation_id,user_id", "conversation_id,sender_id"].includes(key.join(",")),
    `the rows are locked in the order conversation_id, user_id: sorted by ${key.join(", ")}`,
  );
});
