// Turns messages that arrive in any order, any number of times, from live events, sync pages and gap fills, into one
// stream per conversation: each message once, in `seq` order, with no holes.
//
// De-duplication by id, done cheaply: `seq` names exactly one message (one id) within a conversation, so a message at or
// below the cursor has been delivered already, and one whose seq is already buffered is a copy of the buffered one.
import type { Message } from "@chat-gateway/protocol";
import type { Cursors } from "./storage.js";

/** Missing seqs `fromSeq..toSeq` (inclusive) of a conversation: fetch everything after `fromSeq - 1`. */
export interface Gap {
  conversationId: string;
  fromSeq: number;
  toSeq: number;
}

interface ConversationStream {
  cursor: number;
  /** Messages above cursor + 1, by seq, waiting for the ones below them. */
  buffered: Map<number, Message>;
  /** The highest seq known to exist, even if its message was not kept (see `maxBuffered`). */
  highestSeen: number;
}

export interface SequencerOptions {
  /**
   * Messages kept per conversation while waiting for a hole to fill; above this the highest are dropped (and fetched
   * again by the gap fill), so a long outage of history fetches cannot grow memory without bound.
   * @default 1000
   */
  maxBuffered?: number;
}

export class MessageSequencer {
  private readonly streams = new Map<string, ConversationStream>();
  private readonly maxBuffered: number;

  constructor(initial: Cursors = {}, options: SequencerOptions = {}) {
    this.maxBuffered = options.maxBuffered ?? 1000;
    this.restore(initial);
  }

  /** Sets cursors loaded from storage; a cursor only moves forward, never back. */
  restore(cursors: Cursors): void {
    for (const [conversationId, seq] of Object.entries(cursors)) {
      if (!Number.isInteger(seq) || seq < 0) continue;
      const stream = this.stream(conversationId);
      if (seq > stream.cursor) this.advanceTo(stream, seq);
    }
  }

  /** Takes one message; returns the messages that can now go to the app, in order (often none, often just it). */
  accept(message: Message): Message[] {
    const stream = this.stream(message.conversationId);
    const { seq } = message;
    if (!Number.isInteger(seq) || seq <= stream.cursor) return [];
    stream.highestSeen = Math.max(stream.highestSeen, seq);
    if (seq > stream.cursor + 1) {
      if (!stream.buffered.has(seq)) {
        stream.buffered.set(seq, message);
        this.trim(stream);
      }
      return [];
    }
    const ready = [message];
    stream.cursor = seq;
    for (let next = this.take(stream, seq + 1); next; next = this.take(stream, stream.cursor + 1)) {
      ready.push(next);
      stream.cursor = next.seq;
    }
    return ready;
  }

  /** Accepts many (a sync page, a history page); same as calling `accept` for each. */
  acceptAll(messages: readonly Message[]): Message[] {
    return messages.flatMap((m) => this.accept(m));
  }

  /** The hole in a conversation, if a later message has been seen but an earlier one not yet. */
  gap(conversationId: string): Gap | null {
    const stream = this.streams.get(conversationId);
    if (!stream || stream.highestSeen <= stream.cursor) return null;
    let toSeq = stream.highestSeen;
    for (const seq of stream.buffered.keys()) toSeq = Math.min(toSeq, seq - 1);
    return { conversationId, fromSeq: stream.cursor + 1, toSeq };
  }

  cursor(conversationId: string): number {
    return this.streams.get(conversationId)?.cursor ?? 0;
  }

  cursors(): Cursors {
    const out: Cursors = {};
    for (const [conversationId, stream] of this.streams) out[conversationId] = stream.cursor;
    return out;
  }

  bufferedCount(conversationId: string): number {
    return this.streams.get(conversationId)?.buffered.size ?? 0;
  }

  private stream(conversationId: string): ConversationStream {
    let stream = this.streams.get(conversationId);
    if (!stream) {
      stream = { cursor: 0, buffered: new Map(), highestSeen: 0 };
      this.streams.set(conversationId, stream);
    }
    return stream;
  }

  private take(stream: ConversationStream, seq: number): Message | undefined {
    const message = stream.buffered.get(seq);
    if (message) stream.buffered.delete(seq);
    return message;
  }

  private advanceTo(stream: ConversationStream, seq: number): void {
    stream.cursor = seq;
    stream.highestSeen = Math.max(stream.highestSeen, seq);
    for (const buffered of stream.buffered.keys()) if (buffered <= seq) stream.buffered.delete(buffered);
    // Whatever was waiting directly above the new cursor is not delivered here: restore happens before any delivery.
  }

  private trim(stream: ConversationStream): void {
    if (stream.buffered.size <= this.maxBuffered) return;
    const highest = Math.max(...stream.buffered.keys());
    stream.buffered.delete(highest);
  }
}
