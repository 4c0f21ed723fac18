// Messages the app sent that the gateway has not acknowledged yet. Each keeps its clientMsgId across every retry, so
// however many times a send is repeated (timeouts, reconnects, restarts) the gateway stores it once.
import type { Message } from "@chat-gateway/protocol";
import { type BackoffOptions, retryDelay } from "./backoff.js";
import { type Clock, systemClock, TimerSet, type TimerHandle } from "./clock.js";
import { ChatApiError, toChatApiError } from "./errors.js";
import { createClientMsgId } from "./ids.js";
import { CoalescingWriter, MemoryOutboxStorage, type OutboxEntry, type OutboxStorage } from "./storage.js";

export interface OutboxOptions {
  /** Sends one entry and resolves with the stored message; rejects with a ChatApiError. */
  transmit: (entry: OutboxEntry) => Promise<Message>;
  storage?: OutboxStorage;
  onSent?: (entry: OutboxEntry, message: Message) => void;
  /** The gateway refused the entry for good (`bad_request`, `payload_too_large`, `not_found`, `forbidden`). */
  onFailed?: (entry: OutboxEntry, error: ChatApiError) => void;
  onStorageError?: (error: unknown) => void;
  backoff?: BackoffOptions;
  clock?: Clock;
  random?: () => number;
}

/** Per conversation: only its oldest entry is ever in flight, which keeps a conversation's sends in order. */
interface ConversationLane {
  inFlight: string | null;
  timer: TimerHandle | undefined;
  failures: number;
  notBefore: number;
  /** The server said how long to wait (rate_limited, or unavailable for capacity): a reconnection does not skip it. */
  serverWait: boolean;
}

export class Outbox {
  private entries: OutboxEntry[] = [];
  private readonly lanes = new Map<string, ConversationLane>();
  private readonly storage: OutboxStorage;
  private readonly writer: CoalescingWriter<OutboxEntry[]>;
  private readonly clock: Clock;
  private readonly timers: TimerSet;
  private online = false;
  private closed = false;
  private readonly loaded: Promise<void>;

  constructor(private readonly options: OutboxOptions) {
    this.storage = options.storage ?? new MemoryOutboxStorage();
    this.clock = options.clock ?? systemClock;
    this.timers = new TimerSet(this.clock);
    this.writer = new CoalescingWriter(
      () => this.entries.map((e) => ({ ...e })),
      (entries) => this.storage.save(entries),
      (error) => this.options.onStorageError?.(error),
    );
    this.loaded = this.restore();
  }

  /** Resolves once the entries a previous run left unsent are back in the queue. */
  ready(): Promise<void> {
    return this.loaded;
  }

  /** Queues a message; resolves once the storage holds it, so the app may clear its composer. */
  async enqueue(
    conversationId: string,
    content: string,
    clientMsgId = createClientMsgId(),
    options: { replyToId?: string | undefined; attachmentIds?: string[] | undefined } = {},
  ): Promise<OutboxEntry> {
    // Before the stored entries are back, a save would overwrite them, and they must go out first anyway.
    await this.loaded;
    if (this.closed) throw new ChatApiError("unavailable", "the client is closed");
    const entry: OutboxEntry = {
      clientMsgId,
      conversationId,
      content,
      ...(options.replyToId !== undefined ? { replyToId: options.replyToId } : {}),
      ...(options.attachmentIds !== undefined && options.attachmentIds.length > 0
        ? { attachmentIds: [...options.attachmentIds] }
        : {}),
      createdAt: new Date().toISOString(),
      attempts: 0,
    };
    this.entries.push(entry);
    const saved = this.writer.write();
    this.pump(conversationId);
    await saved;
    return { ...entry };
  }

  /**
   * Drops an unsent entry. One already in flight may still be stored by the gateway and then arrives like any other
   * message; it is just no longer retried.
   */
  async cancel(clientMsgId: string): Promise<boolean> {
    await this.loaded;
    const before = this.entries.length;
    this.entries = this.entries.filter((e) => e.clientMsgId !== clientMsgId);
    if (this.entries.length === before) return false;
    await this.writer.write();
    return true;
  }

  pending(): OutboxEntry[] {
    return this.entries.map((e) => ({ ...e }));
  }

  /** Sends only while connected; a fresh connection retries at once, except where the server asked us to wait. */
  setOnline(online: boolean): void {
    this.online = online;
    for (const [conversationId, lane] of this.lanes) {
      this.timers.clear(lane.timer);
      lane.timer = undefined;
      if (online && !lane.serverWait) lane.notBefore = 0;
      if (online) this.pump(conversationId);
    }
  }

  /** Stops sending and waits for the last save; entries stay in storage for the next run. */
  async close(): Promise<void> {
    this.closed = true;
    this.online = false;
    this.timers.clearAll();
    await this.writer.flush();
  }

  /** Resolves when every change so far is in storage. */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  private async restore(): Promise<void> {
    try {
      const stored = await this.storage.load();
      this.entries = stored.map((e) => ({ ...e, attempts: 0 }));
      for (const entry of this.entries) this.pump(entry.conversationId);
    } catch (error) {
      this.options.onStorageError?.(error);
    }
  }

  private lane(conversationId: string): ConversationLane {
    let lane = this.lanes.get(conversationId);
    if (!lane) {
      lane = { inFlight: null, timer: undefined, failures: 0, notBefore: 0, serverWait: false };
      this.lanes.set(conversationId, lane);
    }
    return lane;
  }

  private pump(conversationId: string): void {
    const lane = this.lane(conversationId);
    if (!this.online || this.closed || lane.inFlight !== null || lane.timer !== undefined) return;
    const head = this.entries.find((e) => e.conversationId === conversationId);
    if (!head) {
      this.lanes.delete(conversationId);
      return;
    }
    const wait = lane.notBefore - this.clock.now();
    if (wait > 0) {
      lane.timer = this.timers.set(() => {
        lane.timer = undefined;
        this.pump(conversationId);
      }, wait);
      return;
    }
    lane.inFlight = head.clientMsgId;
    head.attempts += 1;
    let answer: Promise<Message>;
    try {
      answer = this.options.transmit({ ...head });
    } catch (error) {
      answer = Promise.reject(error);
    }
    answer.then(
      (message) => this.succeeded(lane, head, message),
      (error: unknown) => this.failed(lane, head, toChatApiError(error)),
    );
  }

  private succeeded(lane: ConversationLane, entry: OutboxEntry, message: Message): void {
    lane.inFlight = null;
    lane.failures = 0;
    lane.notBefore = 0;
    lane.serverWait = false;
    this.remove(entry);
    this.options.onSent?.({ ...entry }, message);
    this.pump(entry.conversationId);
  }

  private failed(lane: ConversationLane, entry: OutboxEntry, error: ChatApiError): void {
    lane.inFlight = null;
    if (!this.entries.includes(entry)) {
      this.pump(entry.conversationId); // cancelled while in flight
      return;
    }
    lane.failures += 1;
    const delay = retryDelay(error, lane.failures, this.options.backoff, this.options.random);
    if (delay === null) {
      // One refused message must not hold back the ones queued behind it.
      lane.failures = 0;
      lane.notBefore = 0;
      lane.serverWait = false;
      this.remove(entry);
      this.options.onFailed?.({ ...entry }, error);
    } else {
      lane.notBefore = this.clock.now() + delay;
      lane.serverWait =
        error.code === "rate_limited" || (error.code === "unavailable" && error.retryAfterMs !== undefined);
    }
    this.pump(entry.conversationId);
  }

  private remove(entry: OutboxEntry): void {
    const index = this.entries.indexOf(entry);
    if (index === -1) return;
    this.entries.splice(index, 1);
    void this.writer.write();
  }
}
