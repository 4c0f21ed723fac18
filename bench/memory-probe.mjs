// Bench-only preload for the idle-memory figure (`node --expose-gc --import ./bench/memory-probe.mjs ...`), used for
// the gateway and the bare relay alike: on SIGUSR2 it collects garbage, then writes process.memoryUsage() as JSON to
// MEMORY_PROBE_FILE. Without the collection, "heap used" counts garbage that is merely waiting for the next GC.
import { writeFileSync } from "node:fs";

process.on("SIGUSR2", () => {
  globalThis.gc?.();
  writeFileSync(process.env.MEMORY_PROBE_FILE, JSON.stringify(process.memoryUsage()));
});
