import assert from "node:assert/strict";
import { test } from "node:test";
import { TypedEmitter } from "../../packages/sdk/src/emitter.js";

interface Events {
  count: number;
  name: { first: string };
}

test("on, once and the returned unsubscribe", () => {
  const e = new TypedEmitter<Events>();
  const seen: string[] = [];
  const off = e.on("count", (n) => seen.push(`on:${n}`));
  e.once("count", (n) => seen.push(`once:${n}`));
  e.on("name", ({ first }) => seen.push(first));
  e.emit("count", 1);
  e.emit("count", 2);
  off();
  e.emit("count", 3);
  e.emit("name", { first: "ada" });
  assert.deepEqual(seen, ["on:1", "once:1", "on:2", "ada"]);
  assert.equal(e.listenerCount("count"), 0);
});

test("a throwing listener does not keep the others from the event", () => {
  const errors: unknown[] = [];
  const e = new TypedEmitter<Events>((error) => errors.push(error));
  const seen: number[] = [];
  e.on("count", () => {
    throw new Error("app bug");
  });
  e.on("count", (n) => seen.push(n));
  e.emit("count", 7);
  assert.deepEqual(seen, [7]);
  assert.equal(errors.length, 1);
});
