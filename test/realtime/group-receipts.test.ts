// Read receipts whose cost grows linearly with the group: markers are written in batches (forward only, clamped,
// `not_found` for non-members, each marker on its own), small conversations keep per-member events, larger ones get
// one coalesced `conversation:markers` per window (detail or counts), the reader's other devices hear a read at once,
// and a 200-member group over three pods converges on every device with a bounded number of marker events.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { inBatches } from "../../bench/load.js";
import { type AuthSession, ChatClient, type Message as SdkMessage } from "@chat-gateway/sdk";
import { MarkerWriter, type MovedMarkers } from "../../src/chat/marker-writer.js";
import { countsAtOrPast } from "../../src/chat/receipt-announcer.js";
import { createDatabase, type Database } from "../../src/db/client.js";
import { AppError } from "../../src/errors.js";
import type { MarkerEvent, MarkersEvent, AuthResult, Conversation } from "@chat-gateway/protocol";
import {
  api,
  collect,
  connectDevice,
  createConversation,
  type Device,
  eventually,
  registerUser,
  request,
} from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const settled = (p: Promise<void>) =>
  p.then(
    () => "ok",
    (err: unknown) => (err instanceof AppError ? err.code : String(err)),
  );

describe("group receipts", () => {
  let cluster: Cluster;
  let database: Database;
  const sockets: Device[] = [];
  const clients: ChatClient[] = [];

  before(async () => {
    cluster = await startGateways(3, { adapter: "sharded" });
    database = await createDatabase({ databaseUrl: cluster.databaseUrl, dataDir: "unused", poolSize: 2 });
  });
  after(async () => {
    for (const s of sockets) s.close();
    await Promise.all(clients.map((c) => c.close()));
    await database?.close();
    await cluster?.cleanup();
  });

  const connect = async (pod: number, user: AuthResult) => {
    const device = await connectDevice(cluster.urls[pod]!, user.accessToken);
    sockets.push(device);
    return device;
  };
  const send = async (device: Device, conversationId: string, tag: string) => {
    const ack = await request(device, "message:send", {
      conversationId,
      clientMsgId: tag,
      content: tag,
    });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    return ack.message;
  };
  const markersOf = async (conversationId: string) =>
    database.prisma.member.findMany({
      where: { conversationId },
      select: { userId: true, readSeq: true, deliveredSeq: true },
    });

  test("a batch keeps the forward-only rule and the clamp, and a non-member's marker fails alone", async () => {
    const [alice, bob, carol, outsider] = await Promise.all([0, 1, 2, 0].map((p) => registerUser(cluster.urls[p]!)));
    const group = await createConversation(cluster.urls[0]!, alice!.accessToken, {
      type: "group",
      title: "batch",
      memberIds: [bob!.user.id, carol!.user.id],
    });
    const carolDevice = await connect(2, carol!);
    for (let i = 1; i <= 5; i++) await send(carolDevice, group.id, `batch-${i}`);

    const writer = new MarkerWriter(database.sql);
    const batches: MovedMarkers[][] = [];
    writer.onMoved((moved) => batches.push(moved));
    const move = (user: AuthResult, kind: "read" | "delivered", seq: number) =>
      settled(writer.move({ conversationId: group.id, userId: user.user.id, kind, seq }));
    // The first marker of an idle writer goes alone; everything asked while it is in flight is the next batch.
    const first = move(alice!, "delivered", 1);
    const gathered = [
      move(alice!, "read", 2),
      move(alice!, "read", 4),
      move(alice!, "read", 3),
      move(outsider!, "read", 1),
      move(alice!, "read", 99), // past the last message: clamped to 5
      move(bob!, "delivered", 3),
      move(bob!, "read", 2),
      move(bob!, "delivered", 1),
      move(carol!, "read", 5), // sending moved it to 5 already: ok, nothing moves
    ];
    assert.equal(await first, "ok");
    assert.deepEqual(await Promise.all(gathered), ["ok", "ok", "ok", "not_found", "ok", "ok", "ok", "ok", "ok"]);
    assert.equal(batches.length, 2, "one batch for the first marker, one for all the others");
    const sortById = (list: MovedMarkers[]) => [...list].sort((a, b) => a.userId.localeCompare(b.userId));
    assert.deepEqual(
      sortById(batches[1]!),
      sortById([
        { conversationId: group.id, userId: alice!.user.id, read: 5 },
        { conversationId: group.id, userId: bob!.user.id, read: 2, delivered: 3 },
      ]),
    );
    const stored = new Map((await markersOf(group.id)).map((m) => [m.userId, m]));
    assert.deepEqual(
      [alice, bob, carol].map((u) => [stored.get(u!.user.id)?.readSeq, stored.get(u!.user.id)?.deliveredSeq]),
      [
        [5, 1],
        [2, 3],
        [5, 5], // sending moved carol's own read and delivered markers
      ],
    );

    // Stale markers are ok and move nothing; a non-member stays not_found; a conversation that is not one too.
    const again = await Promise.all([
      move(alice!, "read", 3),
      move(outsider!, "delivered", 2),
      move(bob!, "delivered", 2),
      settled(
        writer.move({
          conversationId: "00000000-0000-4000-8000-000000000000",
          userId: alice!.user.id,
          kind: "read",
          seq: 1,
        }),
      ),
    ]);
    assert.deepEqual(again, ["ok", "not_found", "ok", "not_found"]);
    assert.equal(batches.length, 2, "nothing moved, nothing announced");
    await writer.idle();
  });

  test("a full queue and a database failure both answer unavailable", async () => {
    const [alice, bob] = await Promise.all([0, 1].map((p) => registerUser(cluster.urls[p]!)));
    const direct = await createConversation(cluster.urls[0]!, alice!.accessToken, {
      type: "direct",
      userId: bob!.user.id,
    });
    await send(await connect(0, alice!), direct.id, "full-1");
    // A transaction holding alice's member row keeps the first batch waiting on its lock, so the queue fills.
    const holder = new pg.Client({ connectionString: cluster.databaseUrl });
    await holder.connect();
    await holder.query("BEGIN");
    await holder.query("SELECT 1 FROM members WHERE conversation_id = $1 AND user_id = $2 FOR UPDATE", [
      direct.id,
      alice!.user.id,
    ]);
    try {
      const full = new MarkerWriter(database.sql, { maxPending: 2, retryAfterMs: 700 });
      const move = (seq: number) =>
        settled(full.move({ conversationId: direct.id, userId: alice!.user.id, kind: "delivered", seq }));
      const waiting = [move(1), move(1), move(1)]; // one in flight, two waiting: the bound
      await assert.rejects(
        full.move({ conversationId: direct.id, userId: alice!.user.id, kind: "delivered", seq: 1 }),
        (err: unknown) => {
          assert.ok(err instanceof AppError);
          assert.equal(err.code, "unavailable");
          assert.deepEqual(err.details, { retryAfterMs: 700 });
          return true;
        },
      );
      await holder.query("COMMIT");
      assert.deepEqual(await Promise.all(waiting), ["ok", "ok", "ok"]);
    } finally {
      await holder.end();
    }

    // Nothing listens on this port: the driver's connection refusal is `unavailable`, not `internal`.
    const closed = await createDatabase({ databaseUrl: "postgresql://postgres@127.0.0.1:1/none", dataDir: "unused" });
    try {
      const down = new MarkerWriter(closed.sql);
      assert.equal(
        await settled(down.move({ conversationId: direct.id, userId: alice!.user.id, kind: "read", seq: 1 })),
        "unavailable",
      );
    } finally {
      await closed.close();
    }
  });

  test("counts: how many members are at or past each of the highest distinct seqs", () => {
    assert.deepEqual(countsAtOrPast([5, 5, 3, 0, 7, 3, 1], 3), [
      [7, 1],
      [5, 3],
      [3, 5],
    ]);
    assert.deepEqual(countsAtOrPast([0, 0], 50), []);
  });

  test("small conversations keep per-member events; larger ones get conversation:markers and the reader's other devices hear at once", async () => {
    const users = await Promise.all([0, 1, 2, 0, 1, 2].map((p) => registerUser(cluster.urls[p]!)));
    const [alice, bob] = users as [AuthResult, AuthResult];
    const direct = await createConversation(cluster.urls[0]!, alice.accessToken, {
      type: "direct",
      userId: bob.user.id,
    });
    const group = await createConversation(cluster.urls[0]!, alice.accessToken, {
      type: "group",
      title: "five plus",
      memberIds: users.slice(1).map((u) => u.user.id),
    });
    const a1 = await connect(0, alice);
    const a2 = await connect(1, alice);
    const b1 = await connect(2, bob);
    const others = await Promise.all(users.slice(2).map((u, i) => connect(i % 3, u)));
    const all = [a1, a2, b1, ...others];
    const reads = all.map((d) => collect(d, "conversation:read"));
    const delivered = all.map((d) => collect(d, "conversation:delivered"));
    const markers = all.map((d) => collect(d, "conversation:markers"));

    // Direct: both members' devices get the contract's per-member events, and no conversation:markers.
    await send(b1, direct.id, "direct-1");
    assert.equal((await request(a1, "message:delivered", { conversationId: direct.id, seq: 1 })).ok, true);
    assert.equal((await request(a1, "message:read", { conversationId: direct.id, seq: 1 })).ok, true);
    const directRead: MarkerEvent = { conversationId: direct.id, userId: alice.user.id, seq: 1 };
    for (const i of [0, 1, 2]) {
      await eventually(() => reads[i]!.length === 1 && delivered[i]!.length === 1, 10_000, "direct events");
      assert.deepEqual(reads[i], [directRead]);
      assert.deepEqual(delivered[i], [directRead]);
    }

    // A six-member group: alice reads on a1. Her a2 hears it at once as conversation:read, a1 does not; everyone,
    // a1 included, gets it inside one conversation:markers after the window.
    const message = await send(b1, group.id, "group-1");
    assert.equal((await request(a1, "message:delivered", { conversationId: group.id, seq: 1 })).ok, true);
    assert.equal((await request(a1, "message:read", { conversationId: group.id, seq: 1 })).ok, true);
    await eventually(() => reads[1]!.length === 2, 5_000, "a2 hears alice's read");
    assert.deepEqual(reads[1]![1], { conversationId: group.id, userId: alice.user.id, seq: message.seq });
    await eventually(() => markers.every((m) => m.length >= 1), 10_000, "conversation:markers everywhere");
    await sleep(700); // one more window: nothing else may come
    // Normally one event; two if the read's batch came after the window closed (a slow machine).
    for (const m of markers) {
      assert.ok(m.length <= 2, `one window, or two: ${m.length}`);
      const merged = { conversationId: group.id, read: {}, delivered: {} };
      for (const event of m) {
        assert.ok("read" in event, "six members get the detail shape");
        Object.assign(merged.read, event.read);
        Object.assign(merged.delivered, event.delivered);
      }
      assert.deepEqual(merged, {
        conversationId: group.id,
        read: { [alice.user.id]: 1 },
        delivered: { [alice.user.id]: 1 },
      } satisfies MarkersEvent);
    }
    assert.equal(reads[0]!.length, 1, "the reading socket gets no echo");
    for (const [i, r] of reads.entries()) if (i >= 2) assert.equal(r.length, i === 2 ? 1 : 0, "no per-member read");
    for (const [i, d] of delivered.entries())
      if (i >= 2) assert.equal(d.length, i === 2 ? 1 : 0, "no per-member delivered");

    // Past RECEIPTS_DETAIL_MAX_MEMBERS the pod that moved the markers sends counts instead.
    const countsPod = await cluster.startAnother({ RECEIPTS_DETAIL_MAX_MEMBERS: "3" });
    const carolOnCountsPod = await connectDevice(countsPod.url, users[2]!.accessToken);
    sockets.push(carolOnCountsPod);
    const before = markers.map((m) => m.length);
    assert.equal((await request(carolOnCountsPod, "message:read", { conversationId: group.id, seq: 1 })).ok, true);
    await eventually(() => markers.every((m, i) => m.length === before[i]! + 1), 10_000, "counts everywhere");
    // bob sent it (read 1), alice read it, now carol: three of six at seq 1; alice and bob... delivered 1 too.
    for (const m of markers) {
      assert.deepEqual(m.at(-1), { conversationId: group.id, readCounts: [[1, 3]], deliveredCounts: [[1, 3]] });
    }
  });

  test("a 1000-member group can be created, and its receipts come as counts", async () => {
    const [owner, reader] = await Promise.all([0, 1].map((p) => registerUser(cluster.urls[p]!)));
    // The other 998 straight into the table: registering them would only measure argon2.
    const others = Array.from({ length: 998 }, () => randomUUID());
    await database.prisma.$executeRawUnsafe(
      `INSERT INTO users (id, username, display_name, password_hash)
       SELECT id, 'bulk' || replace(id::text, '-', ''), 'Bulk member', 'not-a-hash' FROM unnest($1::uuid[]) AS t(id)`,
      others,
    );
    const ownerDevice = await connect(0, owner!);
    const readerDevice = await connect(1, reader!);
    const updated = collect(readerDevice, "conversation:updated");
    const markers = [ownerDevice, readerDevice].map((d) => collect(d, "conversation:markers"));
    const started = Date.now();
    const group = await createConversation(cluster.urls[2]!, owner!.accessToken, {
      type: "group",
      title: "a thousand",
      memberIds: [reader!.user.id, ...others],
    });
    await eventually(() => updated.length === 1, 20_000, "the new group announced");
    const createMs = Date.now() - started;
    const bytes = JSON.stringify(updated[0]).length;
    console.log(`1000-member group: created and announced in ${createMs} ms, conversation:updated ${bytes} bytes each`);
    assert.equal(updated[0]!.conversation.members.length, 1000);

    // The owner also on the SDK, which reports counts as `conversationReceipts`.
    const ownerApp = new ChatClient({ url: cluster.urls[2]!, auth: owner as AuthSession, transports: ["websocket"] });
    clients.push(ownerApp);
    const receipts: unknown[] = [];
    ownerApp.on("conversationReceipts", (event) => receipts.push(event));
    await ownerApp.connect();

    await send(ownerDevice, group.id, "to a thousand");
    assert.equal((await request(readerDevice, "message:read", { conversationId: group.id, seq: 1 })).ok, true);
    await eventually(() => markers.every((m) => m.length === 1) && receipts.length === 1, 10_000, "counts everywhere");
    const counts = { conversationId: group.id, readCounts: [[1, 2]], deliveredCounts: [[1, 2]] };
    for (const m of markers) assert.deepEqual(m[0], counts);
    assert.deepEqual(receipts, [counts]);
  });

  test("a 200-member group over three pods: every device gets every message and converges on every marker", async () => {
    const size = 200;
    const sdkDevices = 3;
    const messages = 10;
    const users = await inBatches(Array.from({ length: size }), 8, (_, i) => registerUser(cluster.urls[i % 3]!));
    const owner = users[0]!;
    const group = await createConversation(cluster.urls[0]!, owner.accessToken, {
      type: "group",
      title: "two hundred",
      memberIds: users.slice(1).map((u) => u.user.id),
    });
    const conversationId = group.id;

    /** What one device knows: messages, and every member's markers as far as it has heard. */
    interface Knowledge {
      ids: Set<string>;
      read: Map<string, number>;
      delivered: Map<string, number>;
      markerEvents: number;
    }
    const raise = (map: Map<string, number>, userId: string, seq: number) => {
      if (seq > (map.get(userId) ?? 0)) map.set(userId, seq);
    };
    const knowledge: Knowledge[] = [];
    const learn = (k: Knowledge, message: { id: string; senderId: string; seq: number }) => {
      k.ids.add(message.id);
      raise(k.read, message.senderId, message.seq); // sending moves the sender's read marker
      raise(k.delivered, message.senderId, message.seq); // and its delivered marker
    };

    // Raw devices that behave like the SDK: delivered and read for what arrived, gathered for 250 ms.
    const raw = await inBatches(users.slice(sdkDevices), 20, async (user, i) => {
      const device = await connect(i % 3, user);
      const k: Knowledge = { ids: new Set(), read: new Map(), delivered: new Map(), markerEvents: 0 };
      knowledge.push(k);
      let highest = 0;
      let timer: NodeJS.Timeout | undefined;
      device.on("message:new", (message) => {
        learn(k, message);
        highest = Math.max(highest, message.seq);
        timer ??= setTimeout(() => {
          timer = undefined;
          void request(device, "message:delivered", { conversationId, seq: highest });
          void request(device, "message:read", { conversationId, seq: highest });
        }, 250);
      });
      device.on("conversation:markers", (event) => {
        k.markerEvents++;
        assert.ok("read" in event, "200 members get the detail shape");
        for (const [userId, seq] of Object.entries(event.read)) raise(k.read, userId, seq);
        for (const [userId, seq] of Object.entries(event.delivered)) raise(k.delivered, userId, seq);
      });
      device.on("conversation:read", (event) => {
        k.markerEvents++;
        raise(k.read, event.userId, event.seq);
      });
      device.on("conversation:delivered", (event) => {
        k.markerEvents++;
        raise(k.delivered, event.userId, event.seq);
      });
      return device;
    });

    // A few real SDK clients: delivered is automatic, read is the app's call.
    const sdk = await Promise.all(
      users.slice(0, sdkDevices).map(async (user, i) => {
        const client = new ChatClient({
          url: cluster.urls[i % 3]!,
          auth: user as AuthSession,
          transports: ["websocket"],
        });
        clients.push(client);
        const k: Knowledge = { ids: new Set(), read: new Map(), delivered: new Map(), markerEvents: 0 };
        knowledge.push(k);
        client.on("message", (message: SdkMessage) => {
          learn(k, message);
          client.markRead(message.conversationId, message.seq);
        });
        client.on("conversationRead", (event) => raise(k.read, event.userId, event.seq));
        client.on("conversationDelivered", (event) => raise(k.delivered, event.userId, event.seq));
        await client.connect();
        return client;
      }),
    );

    // Senders: two raw devices and one SDK client, a message every 100 ms.
    const sdkSender = knowledge.at(-sdkDevices)!;
    for (let i = 0; i < messages; i++) {
      if (i % 3 === 2) {
        await sdk[0]!.send(conversationId, `sdk ${i}`);
        await eventually(() => sdkSender.ids.size > i, 10_000, "the SDK's send stored");
      } else await send(raw[i % 2]!, conversationId, `raw ${i}`);
      await sleep(100);
    }
    await eventually(() => knowledge.every((k) => k.ids.size === messages), 30_000, "every message on every device");

    // Converged: every device knows every member's stored markers, which are all at the last message.
    const members = await markersOf(conversationId);
    assert.equal(members.length, size);
    const converged = () =>
      knowledge.every((k) =>
        members.every(
          (m) => (k.read.get(m.userId) ?? 0) === m.readSeq && (k.delivered.get(m.userId) ?? 0) === m.deliveredSeq,
        ),
      );
    await eventually(
      async () => {
        const latest = await markersOf(conversationId);
        members.splice(0, members.length, ...latest);
        return latest.every((m) => m.readSeq === messages && m.deliveredSeq === messages) && converged();
      },
      30_000,
      "every device knows every member's read and delivered marker",
    );
    const view = await api<{ conversation: Conversation }>(
      cluster.urls[1]!,
      "GET",
      `/v1/conversations/${conversationId}`,
      {
        token: users[5]!.accessToken,
      },
    );
    for (const m of view.body.conversation.members) {
      assert.equal(m.readSeq, messages);
      assert.equal(m.deliveredSeq, messages);
    }

    const perMessage = knowledge.slice(0, size - sdkDevices).map((k) => k.markerEvents / messages);
    const worst = Math.max(...perMessage);
    const mean = perMessage.reduce((a, b) => a + b, 0) / perMessage.length;
    console.log(`marker events per device per message: mean ${mean.toFixed(2)}, worst ${worst.toFixed(2)}`);
    assert.ok(worst <= 6, `at most 6 marker events per device per message, saw ${worst}`);
    for (const g of cluster.gateways) {
      assert.equal(g.process.exitCode, null, "no gateway exited");
      assert.deepEqual(
        g.logs.filter((line) => line.includes("could not announce")),
        [],
        "every moved marker was announced",
      );
    }
  });
});
