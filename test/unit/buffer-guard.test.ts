// What the buffer guard counts as waiting for a socket: ws's unsent bytes plus engine.io's queued packets.
import assert from "node:assert/strict";
import { test } from "node:test";
import { waitingBytes } from "../../src/realtime/buffer-guard.js";

const conn = (transport: string, bufferedAmount: number, packets: unknown[]) => ({
  readyState: "open",
  writeBuffer: packets.map((data) => ({ data })),
  transport: { name: transport, socket: { bufferedAmount } },
  close: () => undefined,
});

test("waiting bytes add ws's buffer and engine.io's queued packets", () => {
  assert.equal(waitingBytes(conn("websocket", 0, [])), 0);
  // A string packet counts its length (plus one for the packet type), binary its bytes, a bare packet one.
  assert.equal(
    waitingBytes(conn("websocket", 1000, ["x".repeat(99), Buffer.alloc(9), undefined])),
    1000 + 100 + 10 + 1,
  );
  // Polling has no ws buffer: only the queue counts.
  assert.equal(waitingBytes(conn("polling", 5000, ["abc"])), 4);
});

test("counting stops once over the limit, so a huge queue costs no more than the limit", () => {
  const packets = Array.from({ length: 100_000 }, () => "x".repeat(99));
  const counted = waitingBytes(conn("websocket", 0, packets), 1000);
  assert.ok(counted > 1000 && counted <= 1100, String(counted));
});
