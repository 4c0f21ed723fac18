// Sends on an open-loop schedule and follows each message to every device that should get it: the ack, each
// device's first copy and how it came (live, sync, gap fill), or that it never came.
import { performance } from "node:perf_hooks";
import type { Message } from "@chat-gateway/protocol";
import type { Arrival, SdkDevice } from "./devices.js";
import { addCounts, percentile, sleep } from "./stats.js";

interface SendRecord {
  conversationId: string;
  sentAt: number;
  answeredAt?: number;
  /** "ok", an error code, or "timeout" (no answer in 15 s). */
  code?: string;
  seq?: number;
  retryAfterMs?: number;
  recipients: SdkDevice[];
  live: number;
  /** Devices that got it another way than live, and which. */
  recovered: Map<SdkDevice, Arrival>;
  /** Devices whose live copy came after the recovered one: late, not dropped. */
  lateLive: Set<SdkDevice>;
  lastAt: number;
}

/** One measured stretch of sends (a group size, a sweep step, the overload window). */
export class Phase {
  private readonly records = new Map<string, SendRecord>();
  private readonly syncRequiredBefore: Map<SdkDevice, number>;
  readonly startedAt = performance.now();

  constructor(
    devices: SdkDevice[],
    private readonly recipientsOf: (conversationId: string) => SdkDevice[],
  ) {
    this.syncRequiredBefore = new Map(devices.map((d) => [d, d.counters.syncRequired]));
  }

  /** Wired to every device's onMessage by the scenario (only this phase's messages are found here). */
  arrive(device: SdkDevice, message: Message, how: Arrival, at: number) {
    const record = this.records.get(message.clientMsgId);
    if (!record) return;
    if (how === "live") record.live++;
    else record.recovered.set(device, how);
    if (at > record.lastAt) record.lastAt = at;
  }

  lateLive(device: SdkDevice, message: Message) {
    this.records.get(message.clientMsgId)?.lateLive.add(device);
  }

  send(device: SdkDevice, conversationId: string, clientMsgId: string) {
    const record: SendRecord = {
      conversationId,
      sentAt: performance.now(),
      recipients: this.recipientsOf(conversationId),
      live: 0,
      recovered: new Map(),
      lateLive: new Set(),
      lastAt: 0,
    };
    this.records.set(clientMsgId, record);
    void device.send(conversationId, clientMsgId, `bench ${clientMsgId}`).then(({ answer, ackAt }) => {
      record.answeredAt = ackAt;
      if (answer.ok) {
        record.code = "ok";
        record.seq = answer.message.seq;
      } else {
        record.code = answer.error.code;
        const details = answer.error.details as { retryAfterMs?: number } | undefined;
        record.retryAfterMs = details?.retryAfterMs;
      }
    });
  }

  private arrivedEverywhere(r: SendRecord) {
    return r.live + r.recovered.size >= r.recipients.length;
  }

  /**
   * Waits (bounded) until every send is answered and every acked message reached all its devices. Past the
   * deadline, the devices still missing an acked message run `sync` once more (as the SDK keeps doing until it
   * succeeds), so "never" counts only what a successful sync did not bring either.
   */
  async drain(timeoutMs: number) {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      if (this.missingDevices().size === 0 && [...this.records.values()].every((r) => r.code !== undefined))
        return true;
      await sleep(100);
    }
    await Promise.all([...this.missingDevices()].map((d) => d.sync()));
    return false;
  }

  private missingDevices() {
    const missing = new Set<SdkDevice>();
    for (const r of this.records.values()) {
      if (r.code !== "ok" || this.arrivedEverywhere(r)) continue;
      for (const d of r.recipients) if (!d.has(r.conversationId, r.seq!)) missing.add(d);
    }
    return missing;
  }

  /** clientMsgId -> seq of the acked sends, per conversation (for verifyHistory). */
  acked() {
    const acked = new Map<string, Map<string, number>>();
    for (const [clientMsgId, r] of this.records) {
      if (r.code !== "ok") continue;
      let m = acked.get(r.conversationId);
      if (!m) acked.set(r.conversationId, (m = new Map()));
      m.set(clientMsgId, r.seq!);
    }
    return acked;
  }

  /** The figures of this phase. `windowEnd` bounds the "answered/acked in the window" counts. */
  summary() {
    const answers: Record<string, number> = {};
    const ackMs: number[] = [];
    const answerMs: number[] = [];
    const everyDeviceMs: number[] = [];
    let liveDeliveries = 0;
    let recoveredBySync = 0;
    let recoveredByGap = 0;
    let lateLive = 0;
    let never = 0;
    let neverAfterSync = 0;
    let missedLiveSilently = 0;
    let notEverywhere = 0;
    let retryAfterMissing = 0;
    // Answers slower than 1 s: by code, and by the second of the phase they were sent in.
    const lateAnswers: Record<string, number> = {};
    const lateBySecond: Record<string, number> = {};
    let firstSentAt = Infinity;
    for (const r of this.records.values()) firstSentAt = Math.min(firstSentAt, r.sentAt);
    for (const r of this.records.values()) {
      addCounts(answers, r.code ?? "unanswered");
      if (r.answeredAt !== undefined && r.code !== "timeout") answerMs.push(r.answeredAt - r.sentAt);
      if (r.answeredAt !== undefined && r.answeredAt - r.sentAt > 1_000) {
        addCounts(lateAnswers, r.code ?? "unanswered");
        addCounts(lateBySecond, String(Math.floor((r.sentAt - firstSentAt) / 1000)));
      }
      if (r.code === "unavailable" && r.retryAfterMs === undefined) retryAfterMissing++;
      if (r.code !== "ok") continue;
      ackMs.push(r.answeredAt! - r.sentAt);
      liveDeliveries += r.live;
      if (this.arrivedEverywhere(r)) everyDeviceMs.push(r.lastAt - r.sentAt);
      else notEverywhere++;
      for (const device of r.recipients) {
        const how = r.recovered.get(device);
        if (how === "sync") recoveredBySync++;
        else if (how === "gap") recoveredByGap++;
        const late = r.lateLive.has(device);
        if (late) lateLive++;
        const got = device.has(r.conversationId, r.seq!);
        if (!got) never++;
        const toldToSync = device.counters.syncRequired > (this.syncRequiredBefore.get(device) ?? 0);
        if (!got && toldToSync) neverAfterSync++;
        // Never live (not even late) and no sync:required to this device: dropped without a word.
        if ((how !== undefined || !got) && !late && !toldToSync) missedLiveSilently++;
      }
    }
    return {
      sends: this.records.size,
      answers,
      acked: answers.ok ?? 0,
      ackMs,
      answerMs,
      answeredWithin1s: answerMs.filter((ms) => ms <= 1_000).length,
      lateAnswers,
      lateBySecond,
      everyDeviceMs,
      notEverywhere,
      liveDeliveries,
      recoveredBySync,
      recoveredByGap,
      lateLive,
      never,
      neverAfterSync,
      missedLiveSilently,
      retryAfterMissing,
      ackP50: percentile(ackMs, 50),
      ackP99: percentile(ackMs, 99),
    };
  }
}

/**
 * Open loop: send number i is due at i / rate seconds whatever the answers do, so a slow server shows as latency
 * and errors rather than as a politely lower offered load. The schedule is caught up on every 5 ms tick. Returns how
 * many were sent and the seconds it really took.
 */
export async function openLoop(rate: number, seconds: number, sendOne: (i: number) => void) {
  const begin = performance.now();
  const end = begin + seconds * 1000;
  let total = 0;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      const due = Math.floor(((Math.min(now, end) - begin) / 1000) * rate + 1e-6);
      while (total < due) sendOne(total++);
      if (now >= end) {
        clearInterval(tick);
        resolve();
      }
    }, 5);
  });
  return { sent: total, seconds: (performance.now() - begin) / 1000 };
}
