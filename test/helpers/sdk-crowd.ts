// A group of users on SDK devices spread over the gateways, a stream of sends, and the delivery check the fault tests
// share: every acked message ends on every member device (live, or through sync after `sync:required`), once each.
import assert from "node:assert/strict";
import { ChatClient, type Message } from "@chat-gateway/sdk";
import type { AuthResult } from "@chat-gateway/protocol";
import { connectDevice, createConversation, type Device, eventually, registerUser } from "./clients.js";

export interface CrowdDevice {
  index: number;
  url: string;
  client: ChatClient;
  /** Every message the SDK handed the app, in order. */
  received: Message[];
  acked: Message[];
  /** Codes of sends the SDK gave up on. */
  failed: string[];
}

export interface Crowd {
  users: AuthResult[];
  conversationId: string;
  devices: CrowdDevice[];
  /** One raw socket per gateway, counting the `sync:required` it was told. */
  watchers: { socket: Device; syncRequired: number }[];
  close(): void;
}

/** `count` users in one group, device i on urls[i % urls.length]. */
export async function startCrowd(urls: string[], count: number): Promise<Crowd> {
  const users = await Promise.all(Array.from({ length: count }, (_, i) => registerUser(urls[i % urls.length]!)));
  const { id: conversationId } = await createConversation(urls[0]!, users[0]!.accessToken, {
    type: "group",
    title: "crowd",
    memberIds: users.slice(1).map((u) => u.user.id),
  });
  const devices = users.map((auth, index): CrowdDevice => {
    const url = urls[index % urls.length]!;
    const client = new ChatClient({
      url,
      auth,
      transports: ["websocket"],
      reconnectionDelay: 200,
      reconnectionDelayMax: 1_000,
      ackTimeoutMs: 5_000,
      markerDelayMs: 100,
    });
    const d: CrowdDevice = { index, url, client, received: [], acked: [], failed: [] };
    client.on("message", (m) => d.received.push(m));
    client.on("sent", ({ message }) => d.acked.push(message));
    client.on("sendFailed", ({ error }) => d.failed.push(error.code));
    return d;
  });
  await Promise.all(devices.map((d) => d.client.connect()));
  const watchers = await Promise.all(
    urls.map(async (url, i) => {
      const socket = await connectDevice(url, users[i % users.length]!.accessToken);
      const watcher = { socket, syncRequired: 0 };
      socket.on("sync:required", () => watcher.syncRequired++);
      return watcher;
    }),
  );
  return {
    users,
    conversationId,
    devices,
    watchers,
    close: () => {
      for (const d of devices) d.client.close();
      for (const w of watchers) w.socket.close();
    },
  };
}

/** Each device sends `perDevice` messages, `spacingMs` apart; resolves once every send settled (acked or failed). */
export async function stream(crowd: Crowd, perDevice: number, spacingMs: number, label: string): Promise<void> {
  await Promise.all(
    crowd.devices.map(async (d) => {
      for (let k = 0; k < perDevice; k++) {
        await d.client.send(crowd.conversationId, `${label} ${d.index}/${k}`);
        await new Promise((r) => setTimeout(r, spacingMs));
      }
    }),
  );
  const settled = () => crowd.devices.reduce((n, d) => n + d.acked.length + d.failed.length, 0);
  const total = () => crowd.devices.length * perDevice;
  await eventually(() => settled() >= total(), 60_000, "every send acked or refused");
}

/** Every acked message (the devices' own, and `alsoAcked` sent by others) reaches every device once, in seq order. */
export async function assertEveryAckedEverywhere(
  crowd: Crowd,
  alsoAcked: Message[] = [],
  timeoutMs = 30_000,
): Promise<void> {
  const acked = [...crowd.devices.flatMap((d) => d.acked), ...alsoAcked];
  assert.equal(new Set(acked.map((m) => m.id)).size, acked.length, "every send acked once");
  const ids = new Set(acked.map((m) => m.id));
  const missing = (d: CrowdDevice) => [...ids].filter((id) => !d.received.some((m) => m.id === id)).length;
  try {
    await eventually(() => crowd.devices.every((d) => missing(d) === 0), timeoutMs, "every acked message everywhere");
  } catch (err) {
    const report = crowd.devices.map((d) => `device ${d.index}: ${missing(d)} of ${ids.size} missing`).join("; ");
    throw new Error(`${(err as Error).message}: ${report}`, { cause: err });
  }
  for (const d of crowd.devices) {
    const seqs = d.received.filter((m) => m.conversationId === crowd.conversationId).map((m) => m.seq);
    assert.deepEqual(
      seqs,
      seqs.map((_, i) => i + 1),
      `device ${d.index}: each message once, in order`,
    );
  }
}
