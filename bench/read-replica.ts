// `node --import tsx bench/read-replica.ts [--seconds 20] [--rate 200] [--readers 20]`: how much of the read load a
// streaming replica takes while messages are being written, and how often its answer is behind and read again from
// the primary. Starts a replica of the local PostgreSQL (test/helpers/postgres-replica.ts) and one in-process gateway
// with DATABASE_READ_URL; senders post `rate` messages a second spread over 10 groups, while `readers` loops read the
// newest history page, a gap fill (`after` a recent seq) and the conversation list of the same groups. Prints
// chat_db_reads_total by read and source, the replica's replay lag, and checks no page stopped short.
import { parseArgs } from "node:util";
import type { Message } from "@chat-gateway/protocol";
import { api, createConversation, registerUser, uniqueName } from "../test/helpers/clients.js";
import { startInProcessGateway } from "../test/helpers/in-process.js";
import { startPostgresReplica } from "../test/helpers/postgres-replica.js";

const { values: flags } = parseArgs({
  options: {
    seconds: { type: "string", default: "20" },
    rate: { type: "string", default: "200" },
    readers: { type: "string", default: "20" },
  },
});
const seconds = Number(flags.seconds);
const rate = Number(flags.rate);
const readers = Number(flags.readers);

const replica = await startPostgresReplica();
try {
  const gw = await startInProcessGateway({ database: "postgres", readUrlFor: (url) => replica.urlFor(url) });
  try {
    const alice = await registerUser(gw.url);
    const bob = await registerUser(gw.url);
    const groups: string[] = [];
    for (let i = 0; i < 10; i++) {
      groups.push(
        (
          await createConversation(gw.url, alice.accessToken, {
            type: "group",
            title: `g${i}`,
            memberIds: [bob.user.id],
          })
        ).id,
      );
    }
    const lastSent = new Map<string, number>();
    const deadline = Date.now() + seconds * 1000;
    let sent = 0;
    let shortPages = 0;
    let reads = 0;
    // Reads answered other than 200 (`unavailable` when the pool's deadlines run out on an overloaded machine).
    let refused = 0;
    const sender = async () => {
      const started = Date.now();
      while (Date.now() < deadline) {
        const due = Math.floor(((Date.now() - started) / 1000) * rate);
        const batch: Promise<void>[] = [];
        for (; sent < due; sent++) {
          const group = groups[sent % groups.length]!;
          batch.push(
            api<{ message: Message }>(gw.url, "POST", `/v1/conversations/${group}/messages`, {
              token: alice.accessToken,
              body: { clientMsgId: uniqueName("c"), content: `m${sent}` },
            }).then((res) => {
              if (res.status === 201) lastSent.set(group, Math.max(lastSent.get(group) ?? 0, res.body.message.seq));
            }),
          );
        }
        await Promise.all(batch);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    const reader = async (n: number) => {
      for (let i = n; Date.now() < deadline; i++) {
        const group = groups[i % groups.length]!;
        // Whatever was acked before the read must be in its answer.
        const acked = lastSent.get(group) ?? 0;
        const newest = await api<{ messages: Message[] }>(
          gw.url,
          "GET",
          `/v1/conversations/${group}/messages?limit=20`,
          {
            token: bob.accessToken,
          },
        );
        if (newest.status !== 200) {
          refused++;
          continue;
        }
        const top = newest.body.messages.at(-1)?.seq ?? 0;
        if (top < acked) shortPages++;
        const gap = await api<{ messages: Message[] }>(
          gw.url,
          "GET",
          `/v1/conversations/${group}/messages?after=${Math.max(0, acked - 5)}&limit=50`,
          { token: bob.accessToken },
        );
        if (gap.status !== 200) refused++;
        else if ((gap.body.messages.at(-1)?.seq ?? Math.max(0, acked - 5)) < acked) shortPages++;
        if ((await api(gw.url, "GET", "/v1/conversations", { token: bob.accessToken })).status !== 200) refused++;
        reads += 3;
      }
    };
    const lags: number[] = [];
    const lagProbe = async () => {
      while (Date.now() < deadline) {
        const [row] = await replica.query<{ ms: number | null }>(
          "SELECT (extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::float8 AS ms",
        );
        if (row?.ms !== null && row?.ms !== undefined) lags.push(row.ms);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    };
    await Promise.all([sender(), lagProbe(), ...Array.from({ length: readers }, (_, n) => reader(n))]);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    console.log(
      `sent ${sent} messages (${rate}/s target) and made ${reads} reads in ${seconds} s; short pages: ${shortPages}, refused: ${refused}`,
    );
    for (const line of metrics.split("\n").filter((l) => l.startsWith("chat_db_reads_total{"))) console.log(line);
    lags.sort((a, b) => a - b);
    const pct = (p: number) => lags[Math.min(lags.length - 1, Math.floor(p * lags.length))]?.toFixed(1);
    // pg_last_xact_replay_timestamp() is the commit time of the last replayed transaction: between commits it grows,
    // so it bounds the lag from above.
    console.log(`replica: now - last replayed commit, ms: p50 ${pct(0.5)} p90 ${pct(0.9)} p99 ${pct(0.99)}`);
  } finally {
    await gw.close();
  }
} finally {
  replica.cleanup();
}
