// Tells members about changed messages (`message:updated`), with a message's reactions coalesced per short window.
//
// Why: every reaction is a change with its own number, and `message:updated` goes to every device of every member. A
// reaction storm (each of G members reacting to one message) sent one event per reaction per device: G² events per
// round of reactions, 20,000+ events/s for 100 members on the bench, enough to slow every other conversation on the
// same pods. Here, per pod and per message:
// - the first reaction goes out at once (a lone reaction is never delayed) and opens a window of `windowMs`;
// - reactions committed during the window are gathered; when it closes, ONE `message:updated` carries the newest copy
//   of the message (the state after the highest change gathered) and `changeRanges`, every change number it stands
//   for, so a client's change cursor still moves without holes; a non-empty window opens the next one.
// So a storm on one message costs O(members) events per window per pod, however many reactions it holds.
//
// Edits and deletions go out at once, carrying any reactions of that message still gathered (their numbers, and the
// newer copy), so nothing older than an edit is sent after it from this pod. Each pod coalesces what it committed
// itself; the other pods' numbers reach clients in those pods' own events, and a client waits for a hole to close for
// longer than a window before it syncs (README, "Sync of changes"), so coalescing never asks for a sync by itself.
import type { Message, MessageUpdate } from "@chat-gateway/protocol";
import type { Notifier } from "./ports.js";

export interface ChangeAnnouncerOptions {
  /** How long reactions to one message gather after one went out, in ms; 0 sends each reaction at once. */
  windowMs: number;
  /** A window's event could not be sent: its changes are stored, and clients get them by the sync their hole asks for. */
  onError: (err: unknown) => void;
}

/** A message's window: the newest copy gathered, its members, and the change numbers gathered since the last event. */
interface Window {
  latest: Message | undefined;
  memberIds: readonly string[];
  changeSeqs: number[];
  timer: NodeJS.Timeout;
}

export class ChangeAnnouncer {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly notifier: Notifier,
    private readonly options: ChangeAnnouncerOptions,
  ) {}

  /** A committed reaction: sent at once if its message has no open window on this pod, else gathered into it. */
  reaction(message: Message, memberIds: readonly string[]): void {
    const window = this.windows.get(message.id);
    if (window !== undefined) {
      this.gather(window, message, memberIds);
      return;
    }
    this.send(message, memberIds, [message.changeSeq]);
    if (this.options.windowMs > 0) this.open(message.id);
  }

  /** A committed edit or deletion: sent at once, with whatever reactions of that message were still gathered. */
  now(message: Message, memberIds: readonly string[]): void {
    const window = this.windows.get(message.id);
    if (window === undefined || window.latest === undefined) {
      this.send(message, memberIds, [message.changeSeq]);
      return;
    }
    this.gather(window, message, memberIds);
    this.flush(window);
  }

  /** Sends what every window holds now (when draining, so members hear of it before their sockets go). */
  flushAll(): void {
    for (const [id, window] of this.windows) {
      clearTimeout(window.timer);
      this.flush(window);
      this.windows.delete(id);
    }
  }

  private open(messageId: string): void {
    const timer = setTimeout(() => this.endWindow(messageId), this.options.windowMs);
    timer.unref();
    this.windows.set(messageId, { latest: undefined, memberIds: [], changeSeqs: [], timer });
  }

  /** The window's end: its gathered reactions go out and the next window opens, or the message goes quiet. */
  private endWindow(messageId: string): void {
    const window = this.windows.get(messageId);
    if (window === undefined) return;
    if (window.latest === undefined) {
      this.windows.delete(messageId);
      return;
    }
    window.timer.refresh();
    try {
      this.flush(window);
    } catch (err) {
      this.options.onError(err);
    }
  }

  private gather(window: Window, message: Message, memberIds: readonly string[]): void {
    window.changeSeqs.push(message.changeSeq);
    // The newest copy holds every earlier change of the message: changes to one message are serialized by its row.
    if (window.latest === undefined || message.changeSeq > window.latest.changeSeq) {
      window.latest = message;
      window.memberIds = memberIds;
    }
  }

  private flush(window: Window): void {
    const { latest, memberIds, changeSeqs } = window;
    if (latest === undefined) return;
    window.latest = undefined;
    window.memberIds = [];
    window.changeSeqs = [];
    this.send(latest, memberIds, changeSeqs);
  }

  private send(message: Message, memberIds: readonly string[], changeSeqs: number[]): void {
    // One number (the message's own changeSeq) needs no ranges: the event is exactly the contract's message object.
    const update: MessageUpdate =
      changeSeqs.length === 1 && changeSeqs[0] === message.changeSeq
        ? message
        : { ...message, changeRanges: toRanges(changeSeqs) };
    this.notifier.toUsers(memberIds, "message:updated", update);
  }
}

/** Ascending inclusive ranges of the given numbers: [5, 3, 4, 9] -> [[3, 5], [9, 9]]. */
export function toRanges(numbers: readonly number[]): [number, number][] {
  const sorted = [...new Set(numbers)].sort((a, b) => a - b);
  const ranges: [number, number][] = [];
  for (const n of sorted) {
    const last = ranges[ranges.length - 1];
    if (last !== undefined && last[1] === n - 1) last[1] = n;
    else ranges.push([n, n]);
  }
  return ranges;
}
