// The SDK side of messages that change (edits, deletions, reactions): which copy of a message is newest, the change
// cursors that sync sends, and a small queue that sends the user's own changes in order, retrying until acked.
//
// Ordering: every change of a conversation has a number (`changeSeq`), and a message carries the number of its last
// change. A copy is applied only when its changeSeq is above the copy already seen, so a late live event, a sync page
// and a retry's answer can arrive in any order and the app still sees each state once, oldest to newest.
//
// Cursors: the change cursor of a conversation ("every change up to n is applied") moves forward only without holes:
// live `message:updated` events move it by the numbers they stand for (their changeSeq, or every number of their
// `changeRanges` when the gateway coalesced reactions), sync answers move it to `changeCursors`. A hole can be open
// for a while without loss: each pod coalesces its own reactions for a short window, so another pod's numbers may
// come after higher ones. A hole is lost only if it is still open a while after it was seen: the client notes the
// highest number seen when it finds a hole (`holeMark`) and syncs if the cursor has not reached that mark after
// the wait (`reached`); holes opened meanwhile get their own wait, so a steady storm never looks like a loss.
//
// Idempotency of the user's changes: the gateway's operations are naturally idempotent (an edit to the content the
// message already has, a reaction already there or already gone, a second deletion change nothing), so a change
// retried after a lost ack is applied once. The queue sends one change at a time, in the order the app asked, and the
// next only after the previous one was acked or refused for good: a retried edit can never land after a later one.
import type { Message, ReplyPreview } from "@chat-gateway/protocol";
import type { TimerSet } from "./clock.js";
import { retrying } from "./retry.js";
import type { ChatApiError } from "./errors.js";

/** How many message ids the tracker remembers the newest changeSeq of (the oldest are forgotten first). */
const REMEMBERED_MESSAGES = 10_000;

export class ChangeTracker {
  /** message id -> the highest changeSeq seen (insertion order is age, for forgetting). */
  private readonly seen = new Map<string, number>();
  /** Newer copies of messages the app has not been given yet (above the conversation's seq cursor). */
  private readonly early = new Map<string, Message>();
  private readonly cursors = new Map<string, number>();
  /** Change numbers seen live above each conversation's cursor. */
  private readonly ahead = new Map<string, Set<number>>();

  /** The change cursor of a conversation (0: none yet: a sync asks for every change below its seq cursor). */
  cursor(conversationId: string): number {
    return this.cursors.get(conversationId) ?? 0;
  }

  /** After a sync page: the gateway says every change up to `changeSeq` is in what it answered. */
  advance(conversationId: string, changeSeq: number): void {
    if (changeSeq <= this.cursor(conversationId)) return;
    this.cursors.set(conversationId, changeSeq);
    this.drainAhead(conversationId);
  }

  /** A live `message:updated`: counts the change numbers it stands for toward the conversation's cursor. */
  noteLive(conversationId: string, changeRanges: readonly (readonly [number, number])[]): void {
    let ahead = this.ahead.get(conversationId);
    if (ahead === undefined) this.ahead.set(conversationId, (ahead = new Set()));
    const cursor = this.cursor(conversationId);
    for (const [from, to] of changeRanges) for (let n = Math.max(from, cursor + 1); n <= to; n++) ahead.add(n);
    this.drainAhead(conversationId);
  }

  /** With a hole below some number seen live: the highest number seen (the cursor must reach it), else undefined. */
  holeMark(conversationId: string): number | undefined {
    const ahead = this.ahead.get(conversationId);
    if (ahead === undefined || ahead.size === 0) return undefined;
    let highest = 0;
    for (const n of ahead) if (n > highest) highest = n;
    return highest;
  }

  /** Whether every change up to `changeSeq` has been applied. */
  reached(conversationId: string, changeSeq: number): boolean {
    return this.cursor(conversationId) >= changeSeq;
  }

  /**
   * Whether this copy is newer than every copy seen of the message (and remembers it). `delivered`: the app already
   * has the message; otherwise a newer copy is kept until the app gets the message (`latest`).
   */
  accept(message: Message, delivered: boolean): boolean {
    const known = this.seen.get(message.id);
    if (known !== undefined && known >= message.changeSeq) return false;
    this.seen.delete(message.id);
    this.seen.set(message.id, message.changeSeq);
    if (this.seen.size > REMEMBERED_MESSAGES) this.seen.delete(this.seen.keys().next().value!);
    if (!delivered) {
      this.early.set(message.id, message);
      return false;
    }
    return true;
  }

  /** The newest copy of a message the app is about to get for the first time. */
  latest(message: Message): Message {
    const newer = this.early.get(message.id);
    this.early.delete(message.id);
    const known = this.seen.get(message.id);
    if (known === undefined || known < message.changeSeq) this.seen.set(message.id, message.changeSeq);
    return newer !== undefined && newer.changeSeq > message.changeSeq ? newer : message;
  }

  private drainAhead(conversationId: string): void {
    const ahead = this.ahead.get(conversationId);
    if (ahead === undefined) return;
    let cursor = this.cursor(conversationId);
    for (const n of [...ahead]) if (n <= cursor) ahead.delete(n);
    while (ahead.delete(cursor + 1)) cursor++;
    this.cursors.set(conversationId, cursor);
  }
}

/**
 * The preview a reply shows of the message it answers, after that message changed: its first 200 code points, or ""
 * once it is deleted. Apps holding messages apply it to every message whose `replyTo.id` is the changed one's id; the
 * gateway's own answers (history, sync) already carry the current preview.
 */
export function replyPreviewOf(answered: Message): ReplyPreview {
  const content = answered.deletedAt === null ? [...answered.content].slice(0, 200).join("") : "";
  return { id: answered.id, seq: answered.seq, senderId: answered.senderId, content };
}

/**
 * `message` as an app should hold it: when the app holds the message it answers, the reply shows that one's current
 * preview. A copy carries the preview as of its own last change, and a change of the reply (a coalesced reaction
 * event, or one from another pod) can arrive after a later edit of the answered message; the held answered message is
 * always the newest the app knows, so its preview wins. Without it, the gateway's preview stands.
 */
export function withHeldPreview(message: Message, held: (id: string) => Message | undefined): Message {
  const answered = message.replyTo === null ? undefined : held(message.replyTo.id);
  return answered === undefined ? message : { ...message, replyTo: replyPreviewOf(answered) };
}

/** One change the user asked for, as it goes to the gateway. */
export type ChangeRequest =
  | { event: "message:edit"; payload: { conversationId: string; messageId: string; content: string } }
  | { event: "message:delete"; payload: { conversationId: string; messageId: string } }
  | {
      event: "message:react";
      payload: { conversationId: string; messageId: string; emoji: string; on: boolean };
    };

interface QueuedChange {
  change: ChangeRequest;
  resolve: (message: Message) => void;
  reject: (error: ChatApiError) => void;
}

/**
 * Sends the user's changes one at a time, in order, retrying transient failures (offline, timeout, unavailable,
 * rate limited) until acked; a refusal (forbidden, conflict, ...) rejects that change and the queue goes on.
 * Kept in memory: a change asked for while the app is closed is the app's to ask again.
 */
export class ChangeQueue {
  private readonly queue: QueuedChange[] = [];
  private running = false;
  private online = false;
  private wake: (() => void) | null = null;

  constructor(
    private readonly deps: {
      send: (change: ChangeRequest) => Promise<{ message: Message }>;
      timers: TimerSet;
      onAcked: (message: Message) => void;
    },
  ) {}

  enqueue(change: ChangeRequest): Promise<Message> {
    return new Promise((resolve, reject) => {
      this.queue.push({ change, resolve, reject });
      void this.run();
    });
  }

  setOnline(online: boolean): void {
    this.online = online;
    if (online) this.wake?.();
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const head = this.queue[0]!;
        const outcome = await retrying(
          async () => {
            if (!this.online) await new Promise<void>((resolve) => (this.wake = resolve));
            this.wake = null;
            return this.deps.send(head.change);
          },
          { timers: this.deps.timers },
        );
        if (outcome.status === "done") {
          this.deps.onAcked(outcome.value.message);
          head.resolve(outcome.value.message);
        } else if (outcome.status === "failed") head.reject(outcome.error);
        this.queue.shift();
      }
    } finally {
      this.running = false;
    }
  }
}
