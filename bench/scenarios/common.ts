// What the scenarios share: the gateways, one population of registered users (argon2 makes registering slow, so
// it is done once, with bounded concurrency, and grown on demand), the report, and the loss verdict.
import { createConversation, registerUser } from "../../test/helpers/clients.js";
import { hasExited, processUsage, type BenchCluster, type BenchGateway } from "../cluster.js";
import type { DeviceOptions, SdkDevice } from "../devices.js";
import { inBatches, verifyHistory } from "../load.js";
import type { Phase } from "../traffic.js";
import { markdownTable, sleep } from "../stats.js";

export interface User {
  userId: string;
  token: string;
}

export interface Flags {
  sizes: number[];
  seconds?: number;
  bigSeconds: number;
  smallSeconds: number;
  users: number;
  rates: number[];
  stepSeconds: number;
  rate?: number;
  overloadSeconds: number;
  idle: number;
  budgetMinutes: number;
  /** The reaction storm: group members, seconds of each phase, 1:1 sends/s alongside. */
  stormMembers: number;
  stormSeconds: number;
  stormRate: number;
}

export class Context {
  private population: User[] = [];
  private readonly tables: string[] = [];
  /** Why the run failed (messages lost); empty when nothing was lost. */
  readonly lost: string[] = [];
  /** History the gateway would not serve even after retries: neither ok nor proven lost. */
  readonly unverified: string[] = [];
  /** The product's saturation sends/s, once the saturation scenario measured it. */
  capacity: number | undefined;
  /** The SDK-like devices of the 1:1 population, kept for the next scenario that needs them. */
  direct: { devices: SdkDevice[]; recipientsOf: (id: string) => SdkDevice[]; close(): void } | undefined;
  /** Routes each device's messages to the phase being measured. */
  phase: Phase | undefined;
  private readonly startedAt = Date.now();
  /** What the time budget made the run skip (reported, so a short run is never mistaken for a full one). */
  readonly skipped: string[] = [];

  constructor(
    readonly runId: string,
    readonly cluster: BenchCluster,
    readonly flags: Flags,
  ) {}

  /** True (and noted) once the run has used up --budget-minutes: the caller skips `what`. */
  overBudget(what: string): boolean {
    if (Date.now() - this.startedAt < this.flags.budgetMinutes * 60_000) return false;
    this.skipped.push(what);
    console.log(`time budget of ${this.flags.budgetMinutes} min used up: skipping ${what}`);
    return true;
  }

  get urls() {
    return this.cluster.gateways.map((g) => g.url);
  }

  /** The first `count` users of the run's population, registering the missing ones (8 at a time). */
  async users(count: number): Promise<User[]> {
    if (this.population.length < count) {
      const started = Date.now();
      const from = this.population.length;
      const added = await inBatches(Array.from({ length: count - from }), 8, (_, i) =>
        registerUser(this.urls[(from + i) % this.urls.length]!),
      );
      this.population.push(...added.map((a) => ({ userId: a.user.id, token: a.accessToken })));
      console.log(`registered ${count - from} users in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
    return this.population.slice(0, count);
  }

  /** Device options for user i's device k on the gateways: users alternate gateways, a user's devices too. */
  deviceOptions(user: User, i: number, k = 0): DeviceOptions {
    return {
      url: this.urls[(i + k) % this.urls.length]!,
      auth: { token: user.token },
      userId: user.userId,
      token: user.token,
      onMessage: (device, message, how, at) => this.phase?.arrive(device, message, how, at),
      onLateLive: (device, message) => this.phase?.lateLive(device, message),
    };
  }

  async createGroup(owner: User, others: User[], title: string) {
    return createConversation(this.urls[0]!, owner.token, {
      type: "group",
      title,
      memberIds: others.map((u) => u.userId),
    });
  }

  crashes(): number {
    return this.cluster.gateways.filter(hasExited).length;
  }

  /** Every acked send of the phase is in history under its seq, and seqs run 1..N: otherwise the run failed. */
  async checkHistory(what: string, phases: Phase[], owners: Map<string, User>) {
    const conversations = [...owners].map(([id, user]) => ({ id, token: user.token, gatewayUrl: this.urls[0]! }));
    const acked = new Map<string, Map<string, number>>();
    for (const phase of phases) {
      for (const [id, sends] of phase.acked()) {
        const into = acked.get(id) ?? new Map<string, number>();
        for (const [clientMsgId, seq] of sends) into.set(clientMsgId, seq);
        acked.set(id, into);
      }
    }
    const check = await verifyHistory({ members: [], conversations }, acked);
    const lost = check.problems.filter((p) => !check.unanswered.includes(p));
    if (lost.length > 0) this.lost.push(`${what}: ${lost.slice(0, 5).join("; ")}`);
    if (check.unanswered.length > 0) this.unverified.push(`${what}: ${check.unanswered.slice(0, 5).join("; ")}`);
    return { ...check, verdict: lost.length > 0 ? "LOST" : check.unanswered.length > 0 ? "unverified" : "ok" };
  }

  table(title: string, header: string[], rows: (string | number)[][]) {
    const md = `${title}\n\n${markdownTable(header, rows)}`;
    this.tables.push(md);
  }

  printTables() {
    if (this.tables.length === 0) return;
    console.log("\n## Rows for bench/RESULTS.md\n");
    console.log(this.tables.join("\n\n"));
    if (this.skipped.length > 0) console.log(`\nSkipped for the time budget: ${this.skipped.join("; ")}`);
  }
}

/**
 * Waits until the gateways are idle again (under 10% of a core each over a second, at most `maxSeconds`), so what
 * one phase left queued (marker fan-out, say) is not billed to the next. Returns the seconds it waited.
 */
export async function quiesce(processes: BenchGateway[], maxSeconds = 30): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < maxSeconds * 1000) {
    const before = cpuSeconds(processes);
    await sleep(1_000);
    if (cpuSeconds(processes) - before < 0.1 * processes.length) break;
  }
  return (Date.now() - started) / 1000;
}

/** CPU seconds of some processes (user + system), from /proc; an exited one counts 0. */
export function cpuSeconds(processes: BenchGateway[]): number {
  return processes.reduce((sum, g) => (hasExited(g) ? sum : sum + processUsage(g.pid).cpuSeconds), 0);
}
