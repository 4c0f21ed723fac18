// What the page shows, kept apart from the DOM: conversations, the loaded part of each one's history, messages on
// their way out, and what is known of the other members (read, delivered, typing, presence).
import type {
  Attachment,
  Conversation,
  MarkerCounts,
  Message,
  OutboxEntry,
  PresenceState,
  PublicUser,
} from "@chat-gateway/sdk";
import { withHeldPreview } from "@chat-gateway/sdk";

export type DeliveryStatus = "pending" | "failed" | "sent" | "delivered" | "read";

export interface Bubble {
  /** The message id once stored; `pending:<clientMsgId>` before. */
  key: string;
  clientMsgId: string;
  seq: number | null;
  senderId: string;
  content: string;
  createdAt: string;
  /** Stored messages' files; a pending message shows none until it is stored. */
  attachments: Attachment[];
}

export class Thread {
  /** Stored messages by id: one bubble per id, however many times a message arrives. */
  readonly stored = new Map<string, Message>();
  /** Own sends not acknowledged yet, by clientMsgId. */
  readonly pending = new Map<string, OutboxEntry & { failed?: string }>();
  /** What each other member has read / received, as far as this page has heard. */
  readonly readBy = new Map<string, number>();
  readonly deliveredTo = new Map<string, number>();
  readonly typing = new Map<string, number>();
  /** Large conversations report counts instead of each member's markers (the gateway's `conversation:markers`). */
  receipts: { read: MarkerCounts; delivered: MarkerCounts } | null = null;
  /** The newest page was asked for: from then on the thread holds every message from its oldest loaded one on. */
  historyRequested = false;
  historyLoaded = false;
  hasOlder = true;
  loadingOlder = false;
  /** The highest seq this device has reported read, so the same marker is not sent again. */
  readReported = 0;

  constructor(public conversation: Conversation) {}

  get id(): string {
    return this.conversation.id;
  }

  oldestSeq(): number | null {
    let oldest: number | null = null;
    for (const m of this.stored.values()) if (oldest === null || m.seq < oldest) oldest = m.seq;
    return oldest;
  }

  /** Stored messages by seq, then the pending ones in the order they were sent. */
  bubbles(): Bubble[] {
    const stored = [...this.stored.values()]
      .sort((a, b) => a.seq - b.seq)
      .map((m) => ({ ...m, key: m.id, seq: m.seq as number | null }));
    const pending = [...this.pending.values()].map((p) => ({
      key: `pending:${p.clientMsgId}`,
      clientMsgId: p.clientMsgId,
      seq: null,
      senderId: "",
      content: p.content,
      createdAt: p.createdAt,
      attachments: [] as Attachment[],
    }));
    return [...stored, ...pending];
  }

  /** The status of an own message: read or delivered once every other member has it. */
  statusOf(bubble: Bubble, me: string): DeliveryStatus {
    if (bubble.seq === null) return this.pending.get(bubble.clientMsgId)?.failed ? "failed" : "pending";
    const others = this.conversation.members.filter((m) => m.id !== me);
    if (others.length === 0) return "sent";
    const seq = bubble.seq;
    // Counts include every member, the sender too (sending moves one's own read marker).
    const everyone = this.conversation.members.length;
    if (others.every((m) => (this.readBy.get(m.id) ?? 0) >= seq)) return "read";
    if (this.receipts && membersAtOrPast(this.receipts.read, seq) >= everyone) return "read";
    const received = (id: string) => Math.max(this.deliveredTo.get(id) ?? 0, this.readBy.get(id) ?? 0);
    if (others.every((m) => received(m.id) >= seq)) return "delivered";
    if (this.receipts && membersAtOrPast(this.receipts.delivered, seq) >= everyone) return "delivered";
    return "sent";
  }

  noteMarker(kind: "read" | "delivered", userId: string, seq: number): void {
    const map = kind === "read" ? this.readBy : this.deliveredTo;
    if (seq > (map.get(userId) ?? 0)) map.set(userId, seq);
  }

  /**
   * Takes a stored message in. Until the conversation is opened only markers are noted: its history then comes as
   * one newest page, so the thread never holds messages with a hole below them.
   */
  addStored(message: Message, me: string): void {
    if (message.senderId === me) this.pending.delete(message.clientMsgId);
    if (this.historyRequested)
      this.stored.set(
        message.id,
        withHeldPreview(message, (id) => this.stored.get(id)),
      );
    if (message.senderId === me) return;
    // Sending moves the sender's read and delivered markers to their own message: whoever wrote seq N has both up to N.
    this.noteMarker("read", message.senderId, message.seq);
    this.noteMarker("delivered", message.senderId, message.seq);
    this.typing.delete(message.senderId);
  }
}

export class ChatState {
  readonly threads = new Map<string, Thread>();
  readonly presence = new Map<string, PresenceState>();
  openId: string | null = null;
  connection: "connecting" | "connected" | "reconnecting" | "disconnected" = "connecting";

  constructor(public readonly me: PublicUser) {}

  upsert(conversation: Conversation): Thread {
    const thread = this.threads.get(conversation.id);
    if (!thread) {
      const created = new Thread(conversation);
      this.threads.set(conversation.id, created);
      this.seedMarkers(created, conversation);
      return created;
    }
    this.seedMarkers(thread, conversation);
    // A full object from the gateway is newer than what we had, except that messages may have raced ahead of it.
    const known = thread.conversation;
    if (known.lastSeq > conversation.lastSeq) {
      thread.conversation = { ...conversation, lastSeq: known.lastSeq, lastMessage: known.lastMessage };
    } else thread.conversation = conversation;
    return thread;
  }

  /**
   * Markers that happened before this page loaded arrive only inside conversation objects, not as events, so they are
   * taken from there; noteMarker keeps the higher value, so an object older than an event never moves a mark back.
   */
  private seedMarkers(thread: Thread, conversation: Conversation): void {
    for (const member of conversation.members) {
      if (member.id === this.me.id) continue;
      thread.noteMarker("read", member.id, member.readSeq);
      thread.noteMarker("delivered", member.id, member.deliveredSeq);
    }
  }

  /** Most recent activity first. */
  sortedThreads(): Thread[] {
    const at = (t: Thread) => t.conversation.lastMessage?.createdAt ?? t.conversation.createdAt;
    return [...this.threads.values()].sort((a, b) => at(b).localeCompare(at(a)));
  }

  open(): Thread | null {
    return this.openId ? (this.threads.get(this.openId) ?? null) : null;
  }

  /** The other person of a direct conversation. */
  peerOf(conversation: Conversation): Conversation["members"][number] | undefined {
    if (conversation.type !== "direct") return undefined;
    return conversation.members.find((m) => m.id !== this.me.id) ?? conversation.members[0];
  }

  titleOf(conversation: Conversation): string {
    if (conversation.type === "direct") return this.peerOf(conversation)?.displayName ?? "Direct chat";
    if (conversation.title) return conversation.title;
    return conversation.members
      .filter((m) => m.id !== this.me.id)
      .map((m) => m.displayName)
      .join(", ");
  }

  nameOf(conversation: Conversation, userId: string): string {
    if (userId === this.me.id) return "You";
    return conversation.members.find((m) => m.id === userId)?.displayName ?? "Someone";
  }
}

/** How many members are at or past `seq`, from counts listed highest seq first; below the lowest listed, a lower bound. */
function membersAtOrPast(counts: MarkerCounts, seq: number): number {
  let members = 0;
  for (const [at, count] of counts) {
    if (at < seq) break;
    members = count;
  }
  return members;
}
