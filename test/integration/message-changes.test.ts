// Messages that change (edits, deletions, reactions, replies) on two real gateway pods over Redis: the refusals and
// their codes, exact reaction counts under 50 concurrent users, replies following their message, unread counts, and
// the sync protocol: a device offline during the changes converges after sync to exactly the online device's state.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import type { AuthResult, Message, MessageUpdate } from "@chat-gateway/protocol";
import { withHeldPreview } from "@chat-gateway/sdk";
import {
  api,
  connectDevice,
  createConversation,
  type Device,
  eventually,
  registerUser,
  type PayloadOf,
  request,
  requestOk,
  uniqueName,
} from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";

const EDIT_WINDOW_S = 60;

/**
 * What a client keeps: messages by id, each replaced only by a copy with a higher changeSeq (or a first copy); and,
 * from live `message:updated` events, every change number they stood for (a coalesced event lists them in
 * `changeRanges`), to check that an online device's change cursor moves without holes.
 */
class DeviceState {
  readonly messages = new Map<string, Message>();
  /** Change numbers announced live, with how many times each came (a number must come once per pod event). */
  readonly announced = new Map<number, number>();
  events = 0;
  /** A live `message:updated`: its numbers counted, the message applied as a client would (without the ranges). */
  applyUpdate(update: MessageUpdate): void {
    const { changeRanges, ...message } = update;
    this.events++;
    for (const [from, to] of changeRanges ?? [[message.changeSeq, message.changeSeq]]) {
      assert.ok(from <= to && to <= message.changeSeq, `ranges end at the message's changeSeq: ${from}-${to}`);
      for (let n = from; n <= to; n++) this.announced.set(n, (this.announced.get(n) ?? 0) + 1);
    }
    this.apply(message);
  }
  /** The highest change number up to which every number was announced live. */
  liveCursor(): number {
    let n = 0;
    while (this.announced.has(n + 1)) n++;
    return n;
  }
  apply(message: Message): void {
    const held = this.messages.get(message.id);
    if (held !== undefined && held.changeSeq >= message.changeSeq) return;
    // A reply's copy carries the preview as of its own last change; the answered message held here is newer or as
    // new (README, "Replies"), so its preview wins, as withHeldPreview does in the SDK.
    this.messages.set(
      message.id,
      withHeldPreview(message, (id) => this.messages.get(id)),
    );
    // Replies show the answered message's current preview (the SDK does the same).
    for (const [id, m] of this.messages) {
      if (m.replyTo?.id !== message.id) continue;
      const content = message.deletedAt === null ? [...message.content].slice(0, 200).join("") : "";
      this.messages.set(id, { ...m, replyTo: { ...m.replyTo, content } });
    }
  }
  sorted(conversationId: string): Message[] {
    return [...this.messages.values()].filter((m) => m.conversationId === conversationId).sort((a, b) => a.seq - b.seq);
  }
}

async function send(device: Device, conversationId: string, content: string, replyToId?: string): Promise<Message> {
  const ack = await request(device, "message:send", {
    conversationId,
    clientMsgId: uniqueName("c"),
    content,
    ...(replyToId ? { replyToId } : {}),
  });
  assert.equal(ack.ok, true, JSON.stringify(ack));
  return ack.message;
}

type ChangeEvent = "message:edit" | "message:delete" | "message:react";

async function change<E extends ChangeEvent>(device: Device, event: E, payload: PayloadOf<E>): Promise<Message> {
  return (await requestOk(device, event, payload)).message;
}

async function refused<E extends ChangeEvent>(device: Device, event: E, payload: PayloadOf<E>): Promise<string> {
  const ack = await request(device, event, payload);
  assert.equal(ack.ok, false, `${event} should be refused: ${JSON.stringify(ack)}`);
  return ack.error.code;
}

describe("messages that change, on two pods", () => {
  let cluster: Cluster;
  let db: pg.Client;
  const devices: Device[] = [];
  before(async () => {
    cluster = await startGateways(2, { env: { MESSAGE_EDIT_WINDOW_S: String(EDIT_WINDOW_S) } });
    db = new pg.Client({ connectionString: cluster.databaseUrl });
    await db.connect();
  });
  after(async () => {
    for (const d of devices) d.close();
    await db?.end();
    await cluster.cleanup();
  });
  const connect = async (pod: number, token: string) => {
    const d = await connectDevice(cluster.urls[pod]!, token);
    devices.push(d);
    return d;
  };

  test("refusals carry their codes; a non-member learns nothing", async () => {
    const [url0, url1] = cluster.urls as [string, string];
    const [admin, member, outsider] = await Promise.all([registerUser(url0), registerUser(url0), registerUser(url1)]);
    const group = await createConversation(url0, admin.accessToken, {
      type: "group",
      title: "codes",
      memberIds: [member.user.id],
    });
    const other = await createConversation(url0, outsider.accessToken, { type: "direct", userId: member.user.id });
    const a = await connect(0, admin.accessToken);
    const m = await connect(1, member.accessToken);
    const o = await connect(1, outsider.accessToken);
    const mine = await send(m, group.id, "member's");
    const ref = { conversationId: group.id, messageId: mine.id };

    assert.equal(await refused(a, "message:edit", { ...ref, content: "admin edits" }), "forbidden");
    // A non-member: the same answer for a real message and one that does not exist.
    assert.equal(await refused(o, "message:edit", { ...ref, content: "x" }), "not_found");
    assert.equal(await refused(o, "message:delete", ref), "not_found");
    assert.equal(await refused(o, "message:react", { ...ref, emoji: "👍", on: true }), "not_found");
    const ghost = { conversationId: group.id, messageId: "00000000-0000-4000-8000-000000000000" };
    assert.equal(await refused(o, "message:delete", ghost), "not_found");
    const httpOutsider = await api(url1, "PATCH", `/v1/conversations/${group.id}/messages/${mine.id}`, {
      token: outsider.accessToken,
      body: { content: "x" },
    });
    assert.equal(httpOutsider.status, 404);
    // The message read by the outsider's calls is unchanged.
    assert.deepEqual((await change(m, "message:edit", { ...ref, content: "member's" })).editedAt, null, "no-op edit");

    assert.equal(await refused(m, "message:react", { ...ref, emoji: "ab", on: true }), "bad_request");
    assert.equal(await refused(m, "message:react", { ...ref, emoji: "👍👍", on: true }), "bad_request");
    assert.equal(await refused(m, "message:edit", { ...ref, content: "" }), "bad_request");
    // A reply must answer a message of the same conversation; a non-member replying learns nothing.
    const elsewhere = await send(o, other.id, "elsewhere");
    assert.equal(
      (
        await request(m, "message:send", {
          conversationId: group.id,
          clientMsgId: uniqueName("c"),
          content: "re",
          replyToId: elsewhere.id,
        })
      ).error.code,
      "bad_request",
    );
    assert.equal(
      (
        await request(o, "message:send", {
          conversationId: group.id,
          clientMsgId: uniqueName("c"),
          content: "re",
          replyToId: mine.id,
        })
      ).error.code,
      "not_found",
    );

    // After the window (MESSAGE_EDIT_WINDOW_S in this cluster's env): forbidden.
    const old = await send(m, group.id, "old");
    await db.query(`UPDATE messages SET created_at = now() - make_interval(secs => $2) WHERE id = $1`, [
      old.id,
      EDIT_WINDOW_S + 5,
    ]);
    assert.equal(
      await refused(m, "message:edit", { conversationId: group.id, messageId: old.id, content: "late" }),
      "forbidden",
    );

    // A plain member may not delete another's message; the group's admin may; twice is ok.
    const admins = await send(a, group.id, "admin's");
    assert.equal(await refused(m, "message:delete", { conversationId: group.id, messageId: admins.id }), "forbidden");
    const tomb = await change(a, "message:delete", ref);
    assert.equal(tomb.content, "");
    assert.notEqual(tomb.deletedAt, null);
    assert.equal(tomb.seq, mine.seq, "a tombstone keeps its seq");
    const again = await change(m, "message:delete", ref);
    assert.deepEqual(again, tomb, "deleting twice is ok and changes nothing");
    assert.equal(await refused(m, "message:edit", { ...ref, content: "back" }), "conflict");
    assert.equal(await refused(m, "message:react", { ...ref, emoji: "👍", on: true }), "conflict");

    // HTTP mirrors.
    const path = `/v1/conversations/${group.id}/messages/${admins.id}`;
    const patched = await api<{ message: Message }>(url1, "PATCH", path, {
      token: admin.accessToken,
      body: { content: "edited over HTTP" },
    });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.message.content, "edited over HTTP");
    assert.notEqual(patched.body.message.editedAt, null);
    const emoji = encodeURIComponent("🎉");
    const put = await api<{ message: Message }>(url0, "PUT", `${path}/reactions/${emoji}`, {
      token: member.accessToken,
    });
    assert.equal(put.status, 200);
    assert.deepEqual(put.body.message.reactions, [{ emoji: "🎉", count: 1, userIds: [member.user.id] }]);
    const unput = await api<{ message: Message }>(url0, "DELETE", `${path}/reactions/${emoji}`, {
      token: member.accessToken,
    });
    assert.deepEqual(unput.body.message.reactions, []);
    const deleted = await api<{ message: Message }>(url0, "DELETE", path, { token: admin.accessToken });
    assert.equal(deleted.status, 200);
    assert.equal(deleted.body.message.content, "");
    const forbiddenHttp = await api(url0, "PATCH", path, { token: member.accessToken, body: { content: "x" } });
    assert.equal(forbiddenHttp.status, 403);
  });

  test("a reply's preview follows its message's edits and deletion; deleted messages are not unread", async () => {
    const [url0] = cluster.urls as [string];
    const [alice, bob] = await Promise.all([registerUser(url0), registerUser(url0)]);
    const direct = await createConversation(url0, alice.accessToken, { type: "direct", userId: bob.user.id });
    const a = await connect(0, alice.accessToken);
    const b = await connect(1, bob.accessToken);
    const long = "🙂".repeat(250);
    const original = await send(a, direct.id, long);
    const reply = await send(b, direct.id, "answer", original.id);
    assert.deepEqual(reply.replyTo, {
      id: original.id,
      seq: original.seq,
      senderId: alice.user.id,
      content: "🙂".repeat(200),
    });
    const history = async () =>
      (
        await api<{ messages: Message[] }>(url0, "GET", `/v1/conversations/${direct.id}/messages`, {
          token: alice.accessToken,
        })
      ).body.messages;
    await change(a, "message:edit", { conversationId: direct.id, messageId: original.id, content: "short" });
    assert.equal((await history()).find((m) => m.id === reply.id)!.replyTo!.content, "short");
    await change(a, "message:delete", { conversationId: direct.id, messageId: original.id });
    const after = (await history()).find((m) => m.id === reply.id)!;
    assert.equal(after.replyTo!.content, "");
    assert.equal(after.replyTo!.id, original.id);

    // Bob sends two; Alice has two unread, one once Bob deletes one.
    const unread = async () =>
      (
        await api<{ conversation: { unreadCount: number } }>(url0, "GET", `/v1/conversations/${direct.id}`, {
          token: alice.accessToken,
        })
      ).body.conversation.unreadCount;
    const before = await unread();
    const gone = await send(b, direct.id, "oops");
    await send(b, direct.id, "kept");
    assert.equal(await unread(), before + 2);
    await change(b, "message:delete", { conversationId: direct.id, messageId: gone.id });
    assert.equal(await unread(), before + 1);
  });

  test("50 users reacting at once: exact counts, few events, online and syncing devices converge", async (t) => {
    const [url0, url1] = cluster.urls as [string, string];
    // A few at a time: password hashing is deliberately slow.
    const users: AuthResult[] = [];
    for (let i = 0; i < 50; i += 5)
      users.push(...(await Promise.all([0, 1, 2, 3, 4].map((j) => registerUser(j % 2 ? url1 : url0)))));
    const [owner, ...rest] = users;
    const group = await createConversation(url0, owner!.accessToken, {
      type: "group",
      title: "storm",
      memberIds: rest.map((u) => u.user.id),
    });
    const sockets = await Promise.all(users.map((u, i) => connect(i % 2, u.accessToken)));
    const target = await send(sockets[0]!, group.id, "react to me");
    const other = await send(sockets[1]!, group.id, "edited during the storm");
    const ref = { conversationId: group.id, messageId: target.id };
    // Two more devices of one member, one on each pod, that only listen: what an online device holds.
    const watchers = await Promise.all([0, 1].map((pod) => connect(pod, users[9]!.accessToken)));
    const online = watchers.map((w) => {
      const state = new DeviceState();
      state.apply(target);
      state.apply(other);
      w.on("message:updated", (m: MessageUpdate) => state.applyUpdate(m));
      return state;
    });

    // 50 👍 and 10 ❤️ at once, and an edit of another message in the middle: 61 changes.
    const acks = await Promise.all([
      ...sockets.flatMap((s, i) => [
        request(s, "message:react", { ...ref, emoji: "👍", on: true }),
        ...(i % 5 === 0 ? [request(s, "message:react", { ...ref, emoji: "❤️", on: true })] : []),
      ]),
      request(sockets[1]!, "message:edit", { conversationId: group.id, messageId: other.id, content: "x" }),
    ]);
    assert.ok(
      acks.every((x) => x.ok),
      JSON.stringify(acks.find((x) => !x.ok)),
    );
    const history = async () =>
      (
        await api<{ messages: Message[] }>(url1, "GET", `/v1/conversations/${group.id}/messages`, {
          token: users[7]!.accessToken,
        })
      ).body.messages;
    const stored = (await history()).find((m) => m.id === target.id)!;
    const thumbs = stored.reactions.find((r) => r.emoji === "👍")!;
    assert.equal(thumbs.count, 50);
    assert.equal(thumbs.userIds.length, 20);
    assert.equal(new Set(thumbs.userIds).size, 20);
    assert.equal(stored.reactions.find((r) => r.emoji === "❤️")!.count, 10);
    assert.equal(Math.max(stored.changeSeq, ...acks.map((x) => (x.ok ? x.message.changeSeq : 0))), 61);

    // Repeats change nothing; then everyone takes theirs back at once: 50 more changes, 111 in all.
    const repeat = await change(sockets[3]!, "message:react", { ...ref, emoji: "👍", on: true });
    assert.ok(repeat.changeSeq <= 61);
    await Promise.all(sockets.map((s) => change(s, "message:react", { ...ref, emoji: "👍", on: false })));
    const truth = await history();
    const emptied = truth.find((m) => m.id === target.id)!;
    assert.deepEqual(
      emptied.reactions.map((r) => [r.emoji, r.count]),
      [["❤️", 10]],
    );
    assert.equal(emptied.changeSeq, 111);

    // Online: each device ends with exactly the stored messages, and every change number came live exactly once
    // (coalesced events list theirs), so its change cursor reached the last change without a hole: no sync needed.
    for (const [pod, state] of online.entries()) {
      await eventually(() => state.liveCursor() === 111, 10_000, `pod ${pod}'s watcher to hear of all 111 changes`);
      assert.deepEqual(state.sorted(group.id), truth, "field by field, the server's state");
      assert.deepEqual(
        [...state.announced.values()].filter((n) => n !== 1),
        [],
        "each number announced once",
      );
      assert.equal(Math.max(...state.announced.keys()), 111);
      // Coalesced: far fewer events than changes (each pod sends one per window per message).
      t.diagnostic(`pod ${pod}'s watcher: ${state.events} message:updated events for 111 changes`);
      assert.ok(state.events <= 111 / 3, `${state.events} message:updated events for 111 changes`);
    }
    // Syncing: a device that held both messages before the storm gets the same state and cursor in one sync.
    const answer = await requestOk(sockets[20]!, "sync", {
      cursors: { [group.id]: { seq: other.seq, changes: 0 } },
    });
    const synced = new DeviceState();
    synced.apply(target);
    synced.apply(other);
    for (const m of answer.changes ?? []) synced.apply(m);
    assert.equal(answer.changeCursors?.[group.id], 111);
    assert.deepEqual(synced.sorted(group.id), online[0]!.sorted(group.id), "syncing and online devices agree");
  });

  test("a device offline during edits, deletions and a reaction storm converges after sync to the online state", async () => {
    const [url0, url1] = cluster.urls as [string, string];
    const [alice, bob, carol] = await Promise.all([registerUser(url0), registerUser(url1), registerUser(url0)]);
    const group = await createConversation(url0, alice.accessToken, {
      type: "group",
      title: "offline",
      memberIds: [bob.user.id, carol.user.id],
    });
    const a = await connect(0, alice.accessToken);
    const b = await connect(1, bob.accessToken);
    // Carol's online device on pod 1 applies live events; her other device syncs, goes away, and comes back on pod 0.
    const online = new DeviceState();
    const carolOnline = await connect(1, carol.accessToken);
    carolOnline.on("message:new", (m) => online.apply(m));
    carolOnline.on("message:updated", (m) => online.applyUpdate(m));

    const sent: Message[] = [];
    for (let i = 0; i < 8; i++) sent.push(await send(i % 2 ? b : a, group.id, `before ${i}`, sent[i - 1]?.id));
    const offline = new DeviceState();
    let cursor: { seq: number; changes: number } = { seq: 0, changes: 0 };
    const syncOffline = async (device: Device, limit: number) => {
      const seen = new Set(offline.messages.keys());
      for (let page = 0; page < 100; page++) {
        const answer = await request(device, "sync", { cursors: { [group.id]: cursor }, limit });
        assert.equal(answer.ok, true);
        for (const m of answer.messages) {
          assert.ok(!seen.has(m.id), "a message the device holds never comes back as a new one");
          assert.equal(m.seq, cursor.seq + 1, "new messages are a gapless run after the cursor");
          cursor = { ...cursor, seq: m.seq };
          seen.add(m.id);
          offline.apply(m);
        }
        for (const m of answer.changes) {
          assert.ok(seen.has(m.id), "a change is of a message the device holds");
          offline.apply(m);
        }
        cursor = { ...cursor, changes: answer.changeCursors[group.id] ?? cursor.changes };
        if (!answer.hasMore) return;
      }
      assert.fail("sync did not finish");
    };
    const carolOffline = await connect(0, carol.accessToken);
    await syncOffline(carolOffline, 500);
    carolOffline.close();

    // While it is away: ten edits, three deletions (one by the admin of another's), a reaction storm, new messages
    // (one replying to an edited one), and edits and reactions to those new ones.
    const ref = (m: Message) => ({ conversationId: group.id, messageId: m.id });
    const by = (m: Message) => (m.senderId === alice.user.id ? a : b);
    for (let i = 0; i < 10; i++)
      await change(by(sent[i % 4]!), "message:edit", { ...ref(sent[i % 4]!), content: `edit ${i}` });
    await change(a, "message:delete", ref(sent[4]!));
    await change(b, "message:delete", ref(sent[5]!));
    await change(a, "message:delete", ref(sent[7]!)); // Bob's, by the group's admin
    const storm = [] as Promise<Message>[];
    for (const [device, emoji, on] of [
      [a, "👍", true],
      [b, "👍", true],
      [a, "😂", true],
      [b, "😂", true],
      [a, "👍", false],
      [b, "🔥", true],
      [a, "🔥", true],
      [b, "😂", false],
    ] as const) {
      for (const target of [sent[0]!, sent[2]!, sent[6]!])
        storm.push(change(device, "message:react", { ...ref(target), emoji, on }));
    }
    await Promise.all(storm);
    const later: Message[] = [];
    for (let i = 0; i < 6; i++)
      later.push(await send(i % 2 ? b : a, group.id, `while away ${i}`, i === 0 ? sent[1]!.id : undefined));
    await change(a, "message:edit", { ...ref(later[0]!), content: "edited while away" });
    await change(b, "message:react", { ...ref(later[0]!), emoji: "👀", on: true });
    await change(b, "message:delete", ref(later[1]!));
    await change(by(sent[1]!), "message:edit", { ...ref(sent[1]!), content: "answered, then edited" });

    // The truth, as the server answers history now.
    const history = (
      await api<{ messages: Message[] }>(url1, "GET", `/v1/conversations/${group.id}/messages`, {
        token: carol.accessToken,
      })
    ).body.messages;
    await eventually(
      () => JSON.stringify(online.sorted(group.id)) === JSON.stringify(history),
      10_000,
      "the online device to hold the server's state",
    );
    const { rows: counter } = await db.query<{ change_seq: number }>(
      `SELECT change_seq FROM message_change_counters WHERE conversation_id = $1`,
      [group.id],
    );
    // Live, every change number reached the online device exactly once (coalesced reactions list theirs).
    await eventually(() => online.liveCursor() === counter[0]!.change_seq, 10_000, "every change number live");
    assert.deepEqual(
      [...online.announced.values()].filter((n) => n !== 1),
      [],
      "each number announced once",
    );

    // Back, with small pages so that both messages and changes need several.
    const back = await connect(0, carol.accessToken);
    await syncOffline(back, 4);
    assert.deepEqual(offline.sorted(group.id), online.sorted(group.id), "field by field, the same state");
    assert.deepEqual(offline.sorted(group.id), history);
    const { rows } = await db.query<{ change_seq: number }>(
      `SELECT change_seq FROM message_change_counters WHERE conversation_id = $1`,
      [group.id],
    );
    assert.equal(cursor.changes, rows[0]!.change_seq, "the cursor reached the conversation's last change");
    // Nothing more to fetch: a second sync answers nothing new.
    const idle = await request(back, "sync", { cursors: { [group.id]: cursor } });
    assert.deepEqual([idle.messages.length, idle.changes.length, idle.hasMore], [0, 0, false]);

    // An older client (number cursors) still gets the messages, tombstones included, and no changes.
    const old = await request(back, "sync", { cursors: { [group.id]: 0 } });
    assert.deepEqual(old.messages, history);
    assert.deepEqual(old.changes, []);
  });
});

describe("messages that change, embedded (PGlite)", () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startGateways(1, { embedded: true, adapter: "memory" });
  });
  after(async () => {
    await cluster.cleanup();
  });

  test("edit, react, reply, delete and sync with change cursors work on the embedded database", async () => {
    const [url] = cluster.urls as [string];
    const [alice, bob] = [await registerUser(url), await registerUser(url)];
    const direct = await createConversation(url, alice.accessToken, { type: "direct", userId: bob.user.id });
    const a = await connectDevice(url, alice.accessToken);
    const b = await connectDevice(url, bob.accessToken);
    try {
      const original = await send(a, direct.id, "first");
      const reply = await send(b, direct.id, "second", original.id);
      assert.equal(reply.replyTo!.content, "first");
      const ref = { conversationId: direct.id, messageId: original.id };
      const edited = await change(a, "message:edit", { ...ref, content: "first, edited" });
      assert.equal(edited.changeSeq, 1);
      const reacted = await change(b, "message:react", { ...ref, emoji: "👍", on: true });
      assert.deepEqual(reacted.reactions, [{ emoji: "👍", count: 1, userIds: [bob.user.id] }]);
      assert.equal(reacted.changeSeq, 2);
      const answer = await request(b, "sync", { cursors: { [direct.id]: { seq: 2, changes: 0 } } });
      assert.deepEqual(
        answer.changes.map((m) => [m.id, m.changeSeq]),
        [[original.id, 2]],
      );
      assert.equal(answer.changeCursors[direct.id], 2);
      const tomb = await change(a, "message:delete", ref);
      assert.equal(tomb.content, "");
      assert.deepEqual(tomb.reactions, []);
      const history = await api<{ messages: Message[] }>(url, "GET", `/v1/conversations/${direct.id}/messages`, {
        token: bob.accessToken,
      });
      assert.equal(history.body.messages[1]!.replyTo!.content, "");
    } finally {
      a.close();
      b.close();
    }
  });
});
