// Presence across real gateway processes: a user is online while any device is connected on any pod, only the
// 0 -> 1 and 1 -> 0 transitions are announced, a SIGKILLed pod's users lapse offline, and one node works without Redis.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  acceptConversation,
  collect,
  connectDevice,
  createConversation,
  type Device,
  eventually,
  registerUser,
  request,
  waitForEvent,
} from "../helpers/clients.js";
import { type Cluster, startGateways } from "../helpers/gateways.js";

const HEARTBEAT_MS = 500;
const TTL_MS = 1500;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Presence has its own pub/sub channel on the adapter's subscriber connection: check it beside both adapters.
for (const adapter of ["sharded", "classic"] as const)
  describe(`presence across pods (${adapter} adapter)`, () => {
    let cluster: Cluster;
    const devices: Device[] = [];
    before(async () => {
      cluster = await startGateways(3, {
        adapter,
        env: { PRESENCE_HEARTBEAT_MS: String(HEARTBEAT_MS), PRESENCE_TTL_MS: String(TTL_MS) },
      });
    });
    after(async () => {
      for (const d of devices) d.close();
      await cluster.cleanup();
    });

    async function watcherAndTarget() {
      const [u0] = cluster.urls as [string];
      const watcher = await registerUser(u0);
      const target = await registerUser(u0);
      const direct = await createConversation(u0, watcher.accessToken, { type: "direct", userId: target.user.id });
      // Accepted: a pending request would hide the target from the watcher who opened it (message-requests.test.ts).
      await acceptConversation(u0, target.accessToken, direct.id);
      const watching = await connectDevice(u0, watcher.accessToken);
      devices.push(watching);
      const events = collect(watching, "presence");
      const answer = await request(watching, "presence:subscribe", { userIds: [target.user.id] });
      assert.equal(answer.ok, true);
      assert.deepEqual(answer.presence[target.user.id], { online: false, lastSeenAt: null });
      return { watcher, target, watching, events };
    }

    test("online from any pod, offline only after the last of several devices, no flapping", async () => {
      const [, u1, u2] = cluster.urls as [string, string, string];
      const { target, watching, events } = await watcherAndTarget();

      const phone = await connectDevice(u1, target.accessToken);
      devices.push(phone);
      const online = await waitForEvent(watching, "presence", (e) => e.userId === target.user.id, 10_000);
      assert.equal(online.online, true);
      assert.equal(typeof online.lastSeenAt, "string");

      const laptop = await connectDevice(u2, target.accessToken);
      devices.push(laptop);
      const again = await request(watching, "presence:subscribe", { userIds: [target.user.id] });
      assert.equal(again.presence[target.user.id]?.online, true);

      phone.close();
      // Several heartbeats and sweeps pass with one device left: still online, nothing announced.
      await sleep(TTL_MS + 3 * HEARTBEAT_MS);
      assert.deepEqual(
        events.map((e) => e.online),
        [true],
      );

      laptop.close();
      await eventually(() => events.length >= 2, 10_000, "offline event");
      await sleep(TTL_MS + 2 * HEARTBEAT_MS); // a late duplicate would show up here
      assert.deepEqual(
        events.map((e) => [e.userId, e.online]),
        [
          [target.user.id, true],
          [target.user.id, false],
        ],
      );
      const offline = events[1]!;
      assert.ok(Date.parse(offline.lastSeenAt!) >= Date.parse(online.lastSeenAt!));
      const final = await request(watching, "presence:subscribe", { userIds: [target.user.id] });
      assert.deepEqual(final.presence[target.user.id], { online: false, lastSeenAt: offline.lastSeenAt });
    });

    test("only users who share a conversation can be watched", async () => {
      const [u0] = cluster.urls as [string];
      const { watching, target } = await watcherAndTarget();
      const stranger = await registerUser(u0);
      const strangerDevice = await connectDevice(u0, stranger.accessToken);
      devices.push(strangerDevice);
      const answer = await request(watching, "presence:subscribe", {
        userIds: [stranger.user.id, target.user.id, "not-a-uuid", "00000000-0000-4000-8000-000000000000"],
      });
      assert.equal(answer.ok, true);
      assert.deepEqual(Object.keys(answer.presence), [target.user.id]);
    });

    test("a SIGKILLed pod's users go offline within the TTL plus a sweep, announced once", async () => {
      const { target, watching, events } = await watcherAndTarget();
      const doomed = cluster.gateways[2]!;
      const onDoomed = await connectDevice(doomed.url, target.accessToken);
      devices.push(onDoomed);
      await eventually(() => events.some((e) => e.online), 10_000, "online event");

      await doomed.stop("SIGKILL");
      const killedAt = Date.now();
      await eventually(() => events.some((e) => !e.online), 15_000, "offline after the pod died");
      // Generous for a contended machine; the design bound is TTL_MS + HEARTBEAT_MS from the last heartbeat.
      const tookMs = Date.now() - killedAt;
      assert.ok(tookMs < TTL_MS + HEARTBEAT_MS + 8_000, `offline took ${tookMs} ms`);
      await sleep(2 * HEARTBEAT_MS);
      assert.deepEqual(
        events.map((e) => e.online),
        [true, false],
      );
      const state = await request(watching, "presence:subscribe", { userIds: [target.user.id] });
      assert.equal(state.presence[target.user.id]?.online, false);
    });
  });

describe("presence on one node (memory adapter)", () => {
  let cluster: Cluster;
  const devices: Device[] = [];
  before(async () => {
    cluster = await startGateways(1, { adapter: "memory" });
  });
  after(async () => {
    for (const d of devices) d.close();
    await cluster.cleanup();
  });

  test("online and offline transitions, once each", async () => {
    const [url] = cluster.urls as [string];
    const watcher = await registerUser(url);
    const target = await registerUser(url);
    const direct = await createConversation(url, watcher.accessToken, { type: "direct", userId: target.user.id });
    await acceptConversation(url, target.accessToken, direct.id);
    const watching = await connectDevice(url, watcher.accessToken);
    devices.push(watching);
    const events = collect(watching, "presence");
    const first = await request(watching, "presence:subscribe", { userIds: [target.user.id] });
    assert.deepEqual(first.presence[target.user.id], { online: false, lastSeenAt: null });

    const a = await connectDevice(url, target.accessToken);
    const b = await connectDevice(url, target.accessToken);
    devices.push(a, b);
    await eventually(() => events.length === 1, 5_000, "online");
    a.close();
    await sleep(300);
    assert.equal(events.length, 1);
    b.close();
    await eventually(() => events.length === 2, 5_000, "offline");
    assert.deepEqual(
      events.map((e) => e.online),
      [true, false],
    );
    const now = await request(watching, "presence:subscribe", { userIds: [target.user.id] });
    assert.deepEqual(now.presence[target.user.id], { online: false, lastSeenAt: events[1]!.lastSeenAt });
  });
});
