// Where the SDK keeps what must outlive the process: unsent messages and sync cursors. The app plugs in its own
// (IndexedDB, localStorage, AsyncStorage, SQLite); the defaults keep them in memory for the life of the client.

/** A message handed to `send()` and not yet acknowledged by the gateway. Plain JSON, so any storage can hold it. */
export interface OutboxEntry {
  clientMsgId: string;
  conversationId: string;
  content: string;
  /** The message this one answers, if any. */
  replyToId?: string;
  /** Uploads (ChatClient.uploadFile) sent with the message. */
  attachmentIds?: string[];
  /** When the app called `send()`, ISO-8601. */
  createdAt: string;
  /** Sends tried so far in this process (not a promise across restarts). */
  attempts: number;
}

export interface OutboxStorage {
  /** Every entry not yet acknowledged, in the order they were sent. */
  load(): Promise<OutboxEntry[]>;
  /** Replaces the stored entries with these. Calls never overlap: the next waits for this one. */
  save(entries: OutboxEntry[]): Promise<void>;
}

/** conversationId -> highest contiguous `seq` the app has been given. */
export type Cursors = Record<string, number>;

export interface CursorStorage {
  load(): Promise<Cursors>;
  /** Replaces the stored cursors with these. Calls never overlap: the next waits for this one. */
  save(cursors: Cursors): Promise<void>;
}

export class MemoryOutboxStorage implements OutboxStorage {
  private entries: OutboxEntry[] = [];
  async load(): Promise<OutboxEntry[]> {
    return this.entries.map((e) => ({ ...e }));
  }
  async save(entries: OutboxEntry[]): Promise<void> {
    this.entries = entries.map((e) => ({ ...e }));
  }
}

export class MemoryCursorStorage implements CursorStorage {
  private cursors: Cursors = {};
  async load(): Promise<Cursors> {
    return { ...this.cursors };
  }
  async save(cursors: Cursors): Promise<void> {
    this.cursors = { ...cursors };
  }
}

/**
 * Serializes writes of a changing snapshot: never two saves at once (an older snapshot landing after a newer one
 * would resurrect sent messages), and a burst of changes during one save becomes a single follow-up save.
 */
export class CoalescingWriter<T> {
  private running: Promise<void> | null = null;
  private dirty = false;

  constructor(
    private readonly snapshot: () => T,
    private readonly save: (value: T) => Promise<void>,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Resolves once a save that includes every change made before this call has finished. */
  write(): Promise<void> {
    this.dirty = true;
    this.running ??= this.drain();
    return this.running;
  }

  /** Resolves when nothing is left to save. */
  async flush(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    try {
      while (this.dirty) {
        this.dirty = false;
        try {
          await this.save(this.snapshot());
        } catch (error) {
          this.onError(error);
        }
      }
    } finally {
      this.running = null;
    }
  }
}
