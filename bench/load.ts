// The load generator: real accounts, group conversations and socket.io-client devices, an open-loop send rate, and
// the bookkeeping that turns acks and deliveries into latencies. One process, so it stays cheap on shared cores.
import { performance } from "node:perf_hooks";
import { io } from "socket.io-client";
import { api, createConversation, registerUser, type Device } from "../test/helpers/clients.js";
import type { AckAnswer, Message } from "@chat-gateway/protocol";

export interface Member {
  userId: string;
  token: string;
  conversationId: string;
  gatewayUrl: string;
}

export interface Population {
  members: Member[];
  conversations: { id: string; token: string; gatewayUrl: string }[];
}

/** Runs `task` over `items` with at most `limit` in flight. */
export async function inBatches<T, R>(items: T[], limit: number, task: (item: T, i: number) => Promise<R>) {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * Registers `clients` users (argon2id makes this the slow part of set-up), puts them in groups of `groupSize`, and
 * assigns member i to gateway i mod N so that every group spans the gateways and each delivery crosses pods.
 */
export async function createPopulation(urls: string[], clients: number, groupSize: number): Promise<Population> {
  const users = await inBatches(Array.from({ length: clients }), 4, (_, i) => registerUser(urls[i % urls.length]!));
  const members: Member[] = [];
  const conversations: Population["conversations"] = [];
  for (let start = 0; start < users.length; start += groupSize) {
    const group = users.slice(start, start + groupSize);
    const owner = group[0]!;
    const ownerUrl = urls[start % urls.length]!;
    const conversation = await createConversation(ownerUrl, owner.accessToken, {
      type: "group",
      title: `bench ${start / groupSize}`,
      memberIds: group.slice(1).map((u) => u.user.id),
    });
    conversations.push({ id: conversation.id, token: owner.accessToken, gatewayUrl: ownerUrl });
    group.forEach((u, k) =>
      members.push({
        userId: u.user.id,
        token: u.accessToken,
        conversationId: conversation.id,
        gatewayUrl: urls[(start + k) % urls.length]!,
      }),
    );
  }
  return { members, conversations };
}

export function openSocket(url: string, token: string): Promise<Device> {
  const socket: Device = io(url, { auth: { token }, transports: ["websocket"], reconnection: false, forceNew: true });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error("connect timed out"));
    }, 30_000);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once("connect_error", (err) => {
      clearTimeout(timer);
      socket.close();
      reject(err);
    });
  });
}

export interface LoadResult {
  offeredRate: number;
  windowSeconds: number;
  /** Sends emitted inside the measured window (after warm-up). */
  sent: number;
  acked: number;
  ackedInWindow: number;
  deliveries: number;
  /** Live count, for late deliveries still arriving after the drain. */
  deliveredSoFar: () => number;
  deliveriesInWindow: number;
  expectedDeliveries: number;
  ackLatencies: number[];
  deliveryLatencies: number[];
  errors: Record<string, number>;
  disconnects: number;
  maxInFlight: number;
  /** clientMsgId -> seq for every acked send (warm-up included), per conversation, for the history check. */
  ackedByConversation: Map<string, Map<string, number>>;
  loadGeneratorCpuSeconds: number;
}

interface Pending {
  sentAt: number;
  measured: boolean;
}

/**
 * Open loop: sends are due at `rate` per second whatever the answers do, so a slow server shows as latency and as
 * acks falling behind, not as a politely lower offered load. The schedule is caught up on every tick, so timer
 * jitter does not lower the rate either; only a saturated load generator would, which `sent` vs offered shows.
 */
export async function driveLoad(
  devices: Device[],
  population: Population,
  options: { rate: number; seconds: number; warmupSeconds: number; groupSize: number; runId: string },
): Promise<LoadResult> {
  const { rate, seconds, warmupSeconds, runId } = options;
  const pending = new Map<string, Pending>();
  const ackLatencies: number[] = [];
  const deliveryLatencies: number[] = [];
  const errors: Record<string, number> = {};
  const ackedByConversation = new Map<string, Map<string, number>>();
  const membersPerConversation = new Map<string, number>();
  for (const m of population.members)
    membersPerConversation.set(m.conversationId, (membersPerConversation.get(m.conversationId) ?? 0) + 1);
  let disconnects = 0;
  let deliveries = 0;
  let deliveriesInWindow = 0;
  let expectedDeliveries = 0;
  let acked = 0;
  let ackedInWindow = 0;
  let sent = 0;
  let inFlight = 0;
  let maxInFlight = 0;

  const begin = performance.now();
  const measureFrom = begin + warmupSeconds * 1000;
  const end = measureFrom + seconds * 1000;
  const inWindow = (t: number) => t >= measureFrom && t < end;

  for (const device of devices) {
    device.on("message:new", (message: Message) => {
      const now = performance.now();
      deliveries++;
      if (inWindow(now)) deliveriesInWindow++;
      const p = pending.get(message.clientMsgId);
      if (p?.measured) deliveryLatencies.push(now - p.sentAt);
    });
    device.on("disconnect", () => disconnects++);
  }

  const countError = (code: string) => (errors[code] = (errors[code] ?? 0) + 1);
  const cpuBefore = process.cpuUsage();
  let total = 0;
  const sendOne = () => {
    const index = total % devices.length;
    const device = devices[index]!;
    const member = population.members[index]!;
    const clientMsgId = `${runId}-${total}`;
    total++;
    const sentAt = performance.now();
    const measured = inWindow(sentAt);
    if (measured) sent++;
    pending.set(clientMsgId, { sentAt, measured });
    inFlight++;
    if (inFlight > maxInFlight) maxInFlight = inFlight;
    device
      .timeout(15_000)
      .emit(
        "message:send",
        { conversationId: member.conversationId, clientMsgId, content: `bench ${clientMsgId}` },
        (err: Error | null, answer?: AckAnswer<{ message: Message }>) => {
          inFlight--;
          const now = performance.now();
          if (err || !answer) return void countError("ack_timeout");
          if (!answer.ok) return void countError(answer.error.code);
          acked++;
          if (inWindow(now)) ackedInWindow++;
          if (measured) ackLatencies.push(now - sentAt);
          expectedDeliveries += membersPerConversation.get(member.conversationId) ?? 0;
          let acks = ackedByConversation.get(member.conversationId);
          if (!acks) ackedByConversation.set(member.conversationId, (acks = new Map()));
          acks.set(clientMsgId, answer.message.seq);
        },
      );
  };

  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      const due = Math.floor(((Math.min(now, end) - begin) / 1000) * rate);
      while (total < due) sendOne();
      if (now >= end) {
        clearInterval(tick);
        resolve();
      }
    }, 5);
  });

  // Let the answers and deliveries of the last sends arrive (bounded) before counting anything as lost.
  const drainDeadline = performance.now() + 20_000;
  let lastDeliveries = -1;
  while (performance.now() < drainDeadline) {
    if (inFlight === 0 && deliveries === lastDeliveries && deliveries >= expectedDeliveries) break;
    lastDeliveries = deliveries;
    await new Promise((r) => setTimeout(r, 250));
  }
  const cpu = process.cpuUsage(cpuBefore);

  return {
    offeredRate: rate,
    windowSeconds: seconds,
    sent,
    acked,
    ackedInWindow,
    deliveries,
    deliveredSoFar: () => deliveries,
    deliveriesInWindow,
    expectedDeliveries,
    ackLatencies,
    deliveryLatencies,
    errors,
    disconnects,
    maxInFlight,
    ackedByConversation,
    loadGeneratorCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

export interface HistoryCheck {
  conversations: number;
  messages: number;
  /** Stored messages times the members of their conversation: what the connected devices should have received. */
  expectedDeliveries: number;
  problems: string[];
  /** Conversations whose history the gateway would not serve (after retries): not checked, not proven lost. */
  unanswered: string[];
}

/** One page of history; an overloaded gateway's 503 or 429 is retried for up to about 30 s. */
async function historyPage(conversation: { id: string; token: string; gatewayUrl: string }, after: number) {
  for (let attempt = 0; ; attempt++) {
    const res = await api<{ messages: Message[]; hasMore: boolean }>(
      conversation.gatewayUrl,
      "GET",
      `/v1/conversations/${conversation.id}/messages?after=${after}&limit=100`,
      { token: conversation.token },
    ).catch(() => ({ status: 0, body: { messages: [], hasMore: false } }));
    if (![0, 429, 503].includes(res.status) || attempt >= 10) return res;
    await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** attempt, 5_000)));
  }
}

/**
 * Reads every conversation's whole history over the REST API and checks that seqs run 1..N without a gap or a
 * duplicate, and that every acked send is there under the seq its ack named.
 */
export async function verifyHistory(population: Population, acked: Map<string, Map<string, number>>) {
  const problems: string[] = [];
  const unanswered: string[] = [];
  let messages = 0;
  let expectedDeliveries = 0;
  const membersOf = new Map<string, number>();
  for (const m of population.members) membersOf.set(m.conversationId, (membersOf.get(m.conversationId) ?? 0) + 1);
  await inBatches(population.conversations, 4, async (conversation) => {
    const seen = new Map<string, number>();
    let expectedSeq = 1;
    let after = 0;
    for (;;) {
      const res = await historyPage(conversation, after);
      if (res.status !== 200) {
        unanswered.push(`${conversation.id}: history answered ${res.status}`);
        return;
      }
      for (const m of res.body.messages) {
        if (m.seq !== expectedSeq) problems.push(`${conversation.id}: expected seq ${expectedSeq}, got ${m.seq}`);
        expectedSeq = m.seq + 1;
        seen.set(m.clientMsgId, m.seq);
        after = m.seq;
      }
      if (!res.body.hasMore || res.body.messages.length === 0) break;
    }
    messages += seen.size;
    expectedDeliveries += seen.size * (membersOf.get(conversation.id) ?? 0);
    for (const [clientMsgId, seq] of acked.get(conversation.id) ?? []) {
      const stored = seen.get(clientMsgId);
      if (stored !== seq)
        problems.push(`${conversation.id}: acked ${clientMsgId} as seq ${seq}, history has ${stored}`);
    }
  });
  const result: HistoryCheck = {
    conversations: population.conversations.length,
    messages,
    expectedDeliveries,
    problems: [...problems, ...unanswered],
    unanswered,
  };
  return result;
}
