// Tells members whose read and delivery markers moved, at a cost that grows linearly with the group.
//
// Announcing each moved marker to every member is G events per marker and 2·G markers per message: 2·G² events per
// message, which took a 100-member group down. Instead, per batch of moved markers (marker-writer.ts):
// - small conversations (the marker writer names their members: its `smallAudienceMax`) keep the contract's
//   `conversation:read` / `conversation:delivered` to every member, at once (it is a handful of events);
// - in larger ones a read goes at once as `conversation:read` to the reader's own other devices only (so their
//   badge clears), and every moved marker is gathered per conversation over `flushMs`; each window then sends ONE
//   `conversation:markers` per conversation to all members together (one emit, one publish per pod), carrying
//   either the markers that moved or, past `detailMaxMembers`, counts that do not grow with the group.
// Each pod gathers what its own writer moved, so a device gets at most about one markers event per window per pod.
import type { Sql } from "../db/client.js";
import type { MarkerCounts, MarkersEvent } from "@chat-gateway/protocol";
import type { MovedMarkers } from "./marker-writer.js";
import type { Notifier } from "./ports.js";

export interface ReceiptAnnouncerOptions {
  /** How long markers of a conversation gather before one `conversation:markers` goes out, in ms. */
  flushMs: number;
  /** Up to this many members `conversation:markers` carries each moved marker; above, counts. */
  detailMaxMembers: number;
  /** Distinct marker values in a counts event. @default 50 */
  countsLimit?: number;
  /** Announcing failed: those markers are stored but not announced (clients see them on the next load or event). */
  onError: (err: unknown) => void;
}

interface Window {
  read: Map<string, number>;
  delivered: Map<string, number>;
  /** The requester of a pending message request, told only of their own markers. */
  withheldFrom?: string;
}

export class ReceiptAnnouncer {
  private windows = new Map<string, Window>();
  private timer: NodeJS.Timeout | undefined;
  private readonly countsLimit: number;

  constructor(
    private readonly sql: Sql,
    private readonly notifier: Notifier,
    private readonly options: ReceiptAnnouncerOptions,
  ) {
    this.countsLimit = options.countsLimit ?? 50;
  }

  /** Called once per committed batch with the markers it moved. */
  announce(moved: MovedMarkers[]): void {
    try {
      this.announceBatch(moved);
    } catch (err) {
      this.options.onError(err);
    }
  }

  private announceBatch(moved: MovedMarkers[]): void {
    for (const m of moved) {
      const { conversationId, userId } = m;
      // The marker writer names the members of small conversations (those told one by one) with the moved markers.
      // The requester of a pending message request never hears of the recipient's markers (message-requests.ts).
      const members = m.withheldFrom === undefined ? m.audience : m.audience?.filter((id) => id !== m.withheldFrom);
      if (members !== undefined) {
        if (m.read !== undefined)
          this.notifier.toUsers(members, "conversation:read", { conversationId, userId, seq: m.read });
        if (m.delivered !== undefined)
          this.notifier.toUsers(members, "conversation:delivered", { conversationId, userId, seq: m.delivered });
        continue;
      }
      if (m.read !== undefined) {
        this.notifier.toOtherDevices(userId, m.readOriginSocketId, "conversation:read", {
          conversationId,
          userId,
          seq: m.read,
        });
      }
      this.gather(m);
    }
  }

  private gather(m: MovedMarkers): void {
    let window = this.windows.get(m.conversationId);
    if (window === undefined) {
      window = { read: new Map(), delivered: new Map() };
      this.windows.set(m.conversationId, window);
    }
    if (m.withheldFrom !== undefined) window.withheldFrom = m.withheldFrom;
    if (m.read !== undefined) window.read.set(m.userId, Math.max(m.read, window.read.get(m.userId) ?? 0));
    if (m.delivered !== undefined)
      window.delivered.set(m.userId, Math.max(m.delivered, window.delivered.get(m.userId) ?? 0));
    // One timer for every conversation: its first marker opens the window, the flush closes it.
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush().catch(this.options.onError);
    }, this.options.flushMs);
  }

  private async flush(): Promise<void> {
    const windows = this.windows;
    this.windows = new Map();
    if (windows.size === 0) return;
    // One query per window for every conversation in it: who to tell, and the markers the counts are made of.
    const rows = await this.sql<{ conversation_id: string; user_id: string; read: number; got: number }>(
      `SELECT conversation_id::text, user_id::text, read_seq AS read, GREATEST(read_seq, delivered_seq) AS got
         FROM members WHERE conversation_id = ANY($1::uuid[])`,
      [[...windows.keys()]],
      { prepare: "receipt-markers" },
    );
    const members = new Map<string, { userId: string; read: number; got: number }[]>();
    for (const row of rows) {
      const list = members.get(row.conversation_id) ?? [];
      list.push({ userId: row.user_id, read: Number(row.read), got: Number(row.got) });
      members.set(row.conversation_id, list);
    }
    for (const [conversationId, window] of windows) {
      const list = members.get(conversationId);
      if (list === undefined) continue; // deleted meanwhile
      const withheldFrom = window.withheldFrom;
      const userIds = list.map((m) => m.userId).filter((id) => id !== withheldFrom);
      if (withheldFrom !== undefined) this.tellOwnMarkersOnly(withheldFrom, conversationId, window);
      let event: MarkersEvent;
      if (list.length > this.options.detailMaxMembers) {
        event = {
          conversationId,
          readCounts: countsAtOrPast(
            list.map((m) => m.read),
            this.countsLimit,
          ),
          deliveredCounts: countsAtOrPast(
            list.map((m) => m.got),
            this.countsLimit,
          ),
        };
      } else {
        event = {
          conversationId,
          read: Object.fromEntries(window.read),
          delivered: Object.fromEntries(window.delivered),
        };
      }
      this.notifier.toUsersTogether(userIds, "conversation:markers", event);
    }
  }

  /** A pending requester's share of a window: their own markers (their other devices' badges), nobody else's. */
  private tellOwnMarkersOnly(userId: string, conversationId: string, window: Window): void {
    const read = window.read.get(userId);
    const delivered = window.delivered.get(userId);
    if (read === undefined && delivered === undefined) return;
    this.notifier.toUsers([userId], "conversation:markers", {
      conversationId,
      read: read === undefined ? {} : { [userId]: read },
      delivered: delivered === undefined ? {} : { [userId]: delivered },
    });
  }
}

/** For the `limit` highest distinct non-zero values: how many of `values` are at or past each, highest first. */
export function countsAtOrPast(values: number[], limit: number): MarkerCounts {
  const sorted = values.filter((v) => v > 0).sort((a, b) => b - a);
  const counts: MarkerCounts = [];
  for (let i = 0; i < sorted.length; i++) {
    const seq = sorted[i]!;
    if (sorted[i + 1] === seq) continue; // the last of a run of equal values knows how many are at or past it
    if (counts.length === limit) break;
    counts.push([seq, i + 1]);
  }
  return counts;
}
