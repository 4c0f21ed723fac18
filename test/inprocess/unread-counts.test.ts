// Unread counts at size: exact (others' live messages after the read marker: not the member's own, not deleted ones,
// also after a rejoin reset the marker below the member's own messages), and computed without reading the unread
// messages: on a group 30,000 messages behind (30 of them deleted), EXPLAIN (ANALYZE, BUFFERS) of the statement stays a few index pages.
// Counting the unread rows themselves (the statement before) read every one of them (bench/history-at-size.ts).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { UNREAD_SQL } from "../../src/chat/conversation-views.js";
import type { AuthResult, Conversation, Message } from "@chat-gateway/protocol";
import { type InProcessGateway, startInProcessGateway } from "../helpers/in-process.js";

let gw: InProcessGateway;
let alice: AuthResult;
let bob: AuthResult;
let group: string;

const sql = (text: string, ...params: unknown[]) => gw.database.sql<Record<string, unknown>>(text, params);

async function send(user: AuthResult, content: string): Promise<Message> {
  const res = await gw.request<{ message: Message }>("POST", `/v1/conversations/${group}/messages`, {
    token: user.accessToken,
    body: { clientMsgId: `c-${Math.random()}`, content },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.message;
}

async function unreadOf(user: AuthResult): Promise<number> {
  const res = await gw.request<{ conversations: Conversation[] }>("GET", "/v1/conversations", {
    token: user.accessToken,
  });
  assert.equal(res.status, 200);
  const c = res.body.conversations.find((x) => x.id === group);
  assert.ok(c, "the group is listed");
  return c.unreadCount;
}

before(async () => {
  gw = await startInProcessGateway({ database: "postgres" });
  [alice, bob] = await Promise.all([gw.register(), gw.register()]);
  const res = await gw.request<{ conversation: Conversation }>("POST", "/v1/conversations", {
    token: alice.accessToken,
    body: { type: "group", title: "unread", memberIds: [bob.user.id] },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  group = res.body.conversation.id;
});

after(async () => {
  await gw?.close();
});

test("unread counts others' live messages after the marker, also below a reset marker", async () => {
  await send(alice, "hello");
  const b1 = await send(bob, "one");
  await send(bob, "two");
  await send(bob, "three");
  assert.equal(await unreadOf(alice), 3, "bob's three");
  assert.equal(await unreadOf(bob), 0, "sending moved bob's marker past alice's message");

  const deleted = await gw.request("DELETE", `/v1/conversations/${group}/messages/${b1.id}`, {
    token: bob.accessToken,
  });
  assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
  assert.equal(await unreadOf(alice), 2, "a deleted message is not unread");

  await send(alice, "mine");
  assert.equal(await unreadOf(alice), 0, "sending moved alice's marker to her message");
  await send(bob, "four");
  // A marker below the member's own messages (as after leaving and rejoining): those stay not unread.
  await sql(
    `UPDATE members SET read_seq = 0 WHERE conversation_id = $1::uuid AND user_id = $2::uuid`,
    group,
    alice.user.id,
  );
  assert.equal(await unreadOf(alice), 3, "two, three and four: not hello or mine (hers), not one (deleted)");
  await sql(
    `UPDATE members SET read_seq = 0 WHERE conversation_id = $1::uuid AND user_id = $2::uuid`,
    group,
    bob.user.id,
  );
  assert.equal(await unreadOf(bob), 2, "hello and mine: not bob's own, deleted or not");
});

test("on a group 30,000 messages behind, the count reads a few index pages, not the messages", async () => {
  // Seeded straight into the table after the sent ones, by bob, one in 1000 deleted; bob's marker moves to the end
  // (as the writer moves a sender's), alice's stays behind.
  const [{ last }] = (await sql(`SELECT last_seq AS last FROM conversations WHERE id = $1::uuid`, group)) as [
    { last: number },
  ];
  await sql(
    `INSERT INTO messages (id, conversation_id, seq, sender_id, client_msg_id, content, deleted_at)
     SELECT gen_random_uuid(), $1::uuid, $3::int + g, $2::uuid, 'seed-' || g, 'filler text ' || g,
            CASE WHEN g % 1000 = 0 THEN now() END
       FROM generate_series(1, 30000) AS g`,
    group,
    bob.user.id,
    last,
  );
  await sql(`UPDATE conversations SET last_seq = last_seq + 30000 WHERE id = $1::uuid`, group);
  await sql(
    `UPDATE members SET read_seq = $3::int WHERE conversation_id = $1::uuid AND user_id = $2::uuid`,
    group,
    bob.user.id,
    last + 30000,
  );
  // As autovacuum would: the visibility map lets the tombstone count stay in the index.
  await sql(`VACUUM (ANALYZE) messages`);
  assert.equal(await unreadOf(alice), 3 + 30000 - 30);

  const [row] = (await sql(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${UNREAD_SQL}`, [group], null)) as [
    { "QUERY PLAN": [{ Plan: { "Shared Hit Blocks": number; "Shared Read Blocks": number } }] },
  ];
  const plan = row["QUERY PLAN"][0].Plan;
  const buffers = plan["Shared Hit Blocks"] + plan["Shared Read Blocks"];
  // The 30,000 rows fill ~250 heap pages and ~90 index leaf pages: reading them would be far above this bound.
  assert.ok(buffers < 60, `the unread counts touched ${buffers} buffers:\n${JSON.stringify(row, null, 1)}`);
});
