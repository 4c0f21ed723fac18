// An SDK-like device for the benchmark: a socket.io-client socket that behaves towards the server the way
// packages/sdk/src/chat-client.ts does, without the SDK's storage and events, and counts what happens to it.
//
// - Markers: every message taken in moves the conversation's cursor (highest seq with nothing missing below it);
//   `message:delivered` and `message:read` are gathered per conversation for 250 ms and sent once each per flush
//   with the highest seq (as MarkerBatcher does), and re-sent after `retryAfterMs` (or 1 s) when refused for now.
//   None is sent that the gateway already holds (as the SDK does, knowing its user id): up to the user's own
//   messages (sending moved the sender's markers), up to an ack, or up to an announcement of the user's own marker
//   (another of its devices moved it first).
// - `sync:required`: runs `sync` with its cursors, page after page, and counts the messages that came that way.
// - Gaps: a `message:new` above cursor + 1 waits 1 s (the SDK's gapFillDelayMs, since pods may deliver a little
//   out of order), then the hole is fetched with `GET /v1/conversations/:id/messages?after=cursor` and counted.
// - Marker events received: `conversation:read`, `conversation:delivered` and `conversation:markers` (by name, so
//   the coalesced event is counted whether or not the server has it yet).
import { performance } from "node:perf_hooks";
import { io } from "socket.io-client";
import { api, type Device } from "../test/helpers/clients.js";
import type { AckAnswer, MarkerEvent, MarkersEvent, Message, MessageUpdate, SyncResult } from "@chat-gateway/protocol";
import { inBatches } from "./load.js";
import { addCounts, sleep } from "./stats.js";

/** How a device first got a message. */
export type Arrival = "live" | "sync" | "gap";

export interface DeviceOptions {
  url: string;
  /** Handshake auth: `{ token }` for the gateway, `{ userId }` for the bench relay. */
  auth: Record<string, string>;
  userId: string;
  /** Access token for the gap fill over HTTP; without it (the relay has no history) gaps are only counted. */
  token?: string;
  /** Told about every message the first time this device has it. */
  onMessage?: (device: SdkDevice, message: Message, how: Arrival, at: number) => void;
  /** Told when a message this device already had by sync or gap fill arrives live after all. */
  onLateLive?: (device: SdkDevice, message: Message) => void;
  markerDelayMs?: number;
}

export interface DeviceCounters {
  live: number;
  sync: number;
  gap: number;
  duplicates: number;
  markerEventsRead: number;
  markerEventsDelivered: number;
  markerEventsCoalesced: number;
  markersSent: number;
  syncRequired: number;
  syncCalls: number;
  gapFills: number;
  disconnects: number;
  /** `message:updated` events received (edits, deletions, reactions). */
  updates: number;
  /** Change numbers those events stood for (a coalesced reaction event stands for each of its `changeRanges`). */
  updatedChanges: number;
  /** Handshakes refused while reconnecting (each tried again after a delay). */
  reconnectFailures: number;
}

const MARKER_RETRY_MS = 1_000;
const REQUEST_TIMEOUT_MS = 15_000;
/** What a request counts as when no ack came within REQUEST_TIMEOUT_MS (not a code the server sends). */
const NO_ANSWER = { ok: false, error: { code: "timeout", message: "no answer within 15 s" } } as const;

export class SdkDevice {
  socket: Device;
  readonly counters: DeviceCounters = {
    live: 0,
    sync: 0,
    gap: 0,
    duplicates: 0,
    markerEventsRead: 0,
    markerEventsDelivered: 0,
    markerEventsCoalesced: 0,
    markersSent: 0,
    syncRequired: 0,
    syncCalls: 0,
    gapFills: 0,
    disconnects: 0,
    updates: 0,
    updatedChanges: 0,
    reconnectFailures: 0,
  };
  /** Error codes of this device's own requests (markers, sync, gap fill), `timeout` when unanswered. */
  readonly errors: Record<string, number> = {};
  /** conversationId -> highest seq with nothing missing below it. */
  readonly cursors = new Map<string, number>();
  /** conversationId -> seqs held above the cursor (a hole below them). */
  private readonly ahead = new Map<string, Set<number>>();
  private readonly pendingMarkers = { delivered: new Map<string, number>(), read: new Map<string, number>() };
  /** What the gateway is known to hold of this user's markers, per conversation: nothing up to it is sent. */
  private readonly heldMarkers = { delivered: new Map<string, number>(), read: new Map<string, number>() };
  private markerTimer: NodeJS.Timeout | undefined;
  private readonly gapTimers = new Map<string, NodeJS.Timeout>();
  private syncing: Promise<void> | undefined;
  private closed = false;

  private readonly options: DeviceOptions;

  constructor(options: DeviceOptions) {
    this.options = { ...options };
    this.socket = this.open(options.url);
  }

  private open(url: string): Device {
    const socket = io(url, {
      auth: this.options.auth,
      transports: ["websocket"],
      reconnection: false,
      forceNew: true,
    }) as Device;
    const on = socket as unknown as {
      on(event: string, listener: (payload: never) => void): void;
    };
    on.on("message:new", (message: Message) => this.take(message, "live"));
    on.on("conversation:read", (event: MarkerEvent) => {
      this.counters.markerEventsRead++;
      if (event.userId === this.userId) this.heldAt("read", event.conversationId, event.seq);
    });
    on.on("conversation:delivered", (event: MarkerEvent) => {
      this.counters.markerEventsDelivered++;
      if (event.userId === this.userId) this.heldAt("delivered", event.conversationId, event.seq);
    });
    on.on("conversation:markers", (event: MarkersEvent) => {
      this.counters.markerEventsCoalesced++;
      if (!("read" in event)) return;
      for (const kind of ["read", "delivered"] as const) {
        const seq = event[kind][this.userId];
        if (seq !== undefined) this.heldAt(kind, event.conversationId, seq);
      }
    });
    on.on("sync:required", () => {
      this.counters.syncRequired++;
      void this.sync();
    });
    on.on("disconnect", () => this.counters.disconnects++);
    on.on("message:updated", (update: MessageUpdate) => {
      this.counters.updates++;
      const ranges = update.changeRanges ?? [[update.changeSeq, update.changeSeq]];
      this.counters.updatedChanges += ranges.reduce((n, [from, to]) => n + to - from + 1, 0);
    });
    return socket;
  }

  /** The gateway this device is on (another one after `reconnectTo`). */
  get url() {
    return this.options.url;
  }

  /**
   * What the SDK does once its connection dropped: a new connection (here to `url`, the way a load balancer sends it
   * to a pod still up), then `sync` with its cursors. Resolves when the sync is done.
   */
  async reconnectTo(url: string, onConnected?: () => void): Promise<void> {
    // A refused handshake (`unavailable` while the pods still up are swamped) is tried again the SDK's way: the
    // delay doubles from 1 s up to 10 s, ±50%.
    for (let attempt = 0; ; attempt++) {
      this.socket.close();
      this.options.url = url;
      this.socket = this.open(url);
      try {
        await this.connected();
        onConnected?.();
        break;
      } catch (err) {
        this.counters.reconnectFailures++;
        if (attempt >= 20 || this.closed) throw err;
        await sleep(Math.min(10_000, 1_000 * 2 ** attempt) * (0.5 + Math.random()));
      }
    }
    await this.sync();
  }

  get userId() {
    return this.options.userId;
  }

  /** Resolves once connected (or rejects with the handshake error). */
  connected(): Promise<this> {
    if (this.socket.connected) return Promise.resolve(this);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("connect timed out")), 30_000);
      this.socket.once("connect", () => {
        clearTimeout(timer);
        resolve(this);
      });
      this.socket.once("connect_error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** Starts following a conversation (cursor 0), so `sync` lists it and its messages are sequenced. */
  follow(conversationId: string) {
    if (!this.cursors.has(conversationId)) this.cursors.set(conversationId, 0);
  }

  /** Sends a message; resolves with the ack (or `{ ok: false, error: { code: "timeout" } }`) and its time in ms. */
  send(conversationId: string, clientMsgId: string, content: string) {
    const sentAt = performance.now();
    return new Promise<{ answer: AckAnswer<{ message: Message }>; sentAt: number; ackAt: number }>((resolve) => {
      this.socket
        .timeout(REQUEST_TIMEOUT_MS)
        .emit(
          "message:send",
          { conversationId, clientMsgId, content },
          (err: Error | null, answer?: AckAnswer<{ message: Message }>) => {
            const ackAt = performance.now();
            resolve({
              answer: err || !answer ? (NO_ANSWER as unknown as AckAnswer<{ message: Message }>) : answer,
              sentAt,
              ackAt,
            });
          },
        );
    });
  }

  /** Adds (`on`) or removes this user's reaction; resolves with the answer's code ("ok", an error code or "timeout"). */
  async react(conversationId: string, messageId: string, emoji: string, on: boolean) {
    const answer = await this.request("message:react", { conversationId, messageId, emoji, on });
    return answer.ok ? "ok" : (answer as unknown as { error: { code: string } }).error.code;
  }

  close() {
    this.closed = true;
    clearTimeout(this.markerTimer);
    for (const t of this.gapTimers.values()) clearTimeout(t);
    this.socket.close();
  }

  /** The sequencer: every message, whatever the path, comes through here once. */
  private take(message: Message, how: Arrival) {
    const id = message.conversationId;
    const cursor = this.cursors.get(id) ?? 0;
    const ahead = this.ahead.get(id);
    if (message.seq <= cursor || ahead?.has(message.seq)) {
      this.counters.duplicates++;
      // Live, but after a sync or gap fill already brought it: late rather than missing.
      if (how === "live") this.options.onLateLive?.(this, message);
      return;
    }
    this.counters[how]++;
    this.options.onMessage?.(this, message, how, performance.now());
    if (message.seq !== cursor + 1) {
      if (ahead) ahead.add(message.seq);
      else this.ahead.set(id, new Set([message.seq]));
      this.scheduleGapFill(id);
      return;
    }
    let next = message.seq;
    while (ahead?.delete(next + 1)) next++;
    if (ahead?.size === 0) this.ahead.delete(id);
    this.cursors.set(id, next);
    if (message.senderId === this.userId && next === message.seq) {
      this.heldAt("delivered", id, next);
      this.heldAt("read", id, next);
    } else this.noteMarker(id, next);
  }

  private noteMarker(conversationId: string, seq: number) {
    for (const kind of ["delivered", "read"] as const) {
      const pending = this.pendingMarkers[kind];
      if (seq > (this.heldMarkers[kind].get(conversationId) ?? 0) && seq > (pending.get(conversationId) ?? 0))
        pending.set(conversationId, seq);
    }
    this.scheduleMarkers(this.options.markerDelayMs ?? 250);
  }

  /** The gateway holds this marker at `seq` or past it (MarkerBatcher.heldAt). */
  private heldAt(kind: "delivered" | "read", conversationId: string, seq: number) {
    const held = this.heldMarkers[kind];
    if (seq > (held.get(conversationId) ?? 0)) held.set(conversationId, seq);
    const pending = this.pendingMarkers[kind];
    if ((pending.get(conversationId) ?? Infinity) <= seq) pending.delete(conversationId);
  }

  private scheduleMarkers(delayMs: number) {
    if (this.markerTimer || this.closed) return;
    this.markerTimer = setTimeout(() => {
      this.markerTimer = undefined;
      this.flushMarkers();
    }, delayMs);
  }

  private flushMarkers() {
    for (const kind of ["delivered", "read"] as const) {
      const pending = this.pendingMarkers[kind];
      const batch = [...pending];
      pending.clear();
      for (const [conversationId, seq] of batch) {
        this.counters.markersSent++;
        void this.request(`message:${kind}`, { conversationId, seq }).then((answer) => {
          if (answer.ok) return this.heldAt(kind, conversationId, seq);
          const { code, details } = answer.error as { code: string; details?: { retryAfterMs?: number } };
          // Refused for now: keep it (unless a newer one is waiting) and try again later, as the SDK does.
          if (code === "unavailable" || code === "rate_limited" || code === "timeout") {
            if (seq > (pending.get(conversationId) ?? 0)) pending.set(conversationId, seq);
            this.scheduleMarkers(details?.retryAfterMs ?? MARKER_RETRY_MS);
          }
        });
      }
    }
  }

  private scheduleGapFill(conversationId: string) {
    if (this.gapTimers.has(conversationId) || this.closed) return;
    this.gapTimers.set(
      conversationId,
      setTimeout(() => void this.fillGap(conversationId).finally(() => this.gapTimers.delete(conversationId)), 1_000),
    );
  }

  private async fillGap(conversationId: string) {
    if (!this.options.token) return;
    while (!this.closed && this.ahead.has(conversationId)) {
      const after = this.cursors.get(conversationId) ?? 0;
      this.counters.gapFills++;
      const res = await api<{ messages: Message[] }>(
        this.options.url,
        "GET",
        `/v1/conversations/${conversationId}/messages?after=${after}&limit=100`,
        { token: this.options.token },
      ).catch(() => ({ status: 0, body: { messages: [] as Message[] } }));
      if (res.status !== 200) {
        addCounts(this.errors, `gap_fill_http_${res.status}`);
        return;
      }
      for (const m of res.body.messages) this.take(m, "gap");
      if ((this.cursors.get(conversationId) ?? 0) === after) return;
    }
  }

  /** What the SDK does on `sync:required`: page through `sync` with its cursors until nothing more comes. */
  sync(): Promise<void> {
    this.syncing ??= (async () => {
      let failures = 0;
      try {
        for (let page = 0; page < 100 && !this.closed; page++) {
          const cursors = Object.fromEntries(this.cursors);
          this.counters.syncCalls++;
          const answer = await this.request<SyncResult>("sync", { cursors, limit: 500 });
          if (!answer.ok) {
            // Like the SDK: a refused or unanswered sync is tried again after the server's retryAfterMs (or 1 s),
            // here for at most a minute in all, so a run still ends.
            if (++failures > 60) return;
            const details =
              "error" in answer ? (answer.error.details as { retryAfterMs?: number } | undefined) : undefined;
            await sleep(details?.retryAfterMs ?? 1_000);
            page--;
            continue;
          }
          for (const m of answer.messages) this.take(m, "sync");
          const advanced = [...this.cursors].some(([id, seq]) => seq > (cursors[id] ?? 0));
          if (!answer.hasMore || !advanced) return;
        }
      } finally {
        this.syncing = undefined;
      }
    })();
    return this.syncing;
  }

  /** Whether this device has `seq` of a conversation, by any path. */
  has(conversationId: string, seq: number) {
    return seq <= (this.cursors.get(conversationId) ?? 0) || (this.ahead.get(conversationId)?.has(seq) ?? false);
  }

  private request<T extends object = object>(event: string, payload: unknown): Promise<AckAnswer<T>> {
    const socket = this.socket as unknown as {
      timeout(ms: number): {
        emit(event: string, payload: unknown, ack: (err: Error | null, a?: unknown) => void): void;
      };
    };
    return new Promise((resolve) => {
      socket.timeout(REQUEST_TIMEOUT_MS).emit(event, payload, (err, answer) => {
        const result = (err || !answer ? NO_ANSWER : answer) as AckAnswer<T> | { ok: false; error: { code: string } };
        if (!result.ok) addCounts(this.errors, `${event} ${result.error.code}`);
        resolve(result as AckAnswer<T>);
      });
    });
  }
}

/** Opens devices with at most `limit` handshakes in flight; `retries`: a refused handshake is tried again after 1 s. */
export function connectDevices(options: DeviceOptions[], limit = 50, retries = 0): Promise<SdkDevice[]> {
  return inBatches(options, limit, async (o) => {
    for (let attempt = 0; ; attempt++) {
      const device = new SdkDevice(o);
      try {
        return await device.connected();
      } catch (err) {
        device.close();
        if (attempt >= retries) throw err;
        await sleep(1_000);
      }
    }
  });
}

export function sumCounters(devices: SdkDevice[]): DeviceCounters {
  const total = { ...devices[0]!.counters };
  for (const key of Object.keys(total) as (keyof DeviceCounters)[]) total[key] = 0;
  for (const d of devices)
    for (const key of Object.keys(total) as (keyof DeviceCounters)[]) total[key] += d.counters[key];
  return total;
}

export function diffCounters(after: DeviceCounters, before: DeviceCounters): DeviceCounters {
  const diff = { ...after };
  for (const key of Object.keys(diff) as (keyof DeviceCounters)[]) diff[key] = after[key] - before[key];
  return diff;
}
