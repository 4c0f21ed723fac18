// A Redis server of the test's own, on a free port, for tests that stop or restart Redis: the shared one on 6379
// must never be touched.
import { type ChildProcess, spawn } from "node:child_process";
import { freePort } from "./haproxy.js";

export interface PrivateRedis {
  url: string;
  port: number;
  /** Kills the server (SIGKILL: as abrupt as a crash). */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
}

/** `args`: extra redis-server arguments, e.g. ["--enable-debug-command", "local"] for DEBUG SLEEP. */
export async function startPrivateRedis(options: { args?: string[] } = {}): Promise<PrivateRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = () =>
    new Promise<void>((resolve, reject) => {
      const c = spawn(
        "redis-server",
        ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", ...(options.args ?? [])],
        {
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      child = c;
      const timer = setTimeout(() => reject(new Error("redis-server did not start")), 10_000);
      c.stdout!.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve();
        }
      });
      c.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}`));
      });
    });
  const stop = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((resolve) => c.once("exit", resolve));
    c.kill("SIGKILL");
    await exited;
  };
  await start();
  return { url: `redis://127.0.0.1:${port}`, port, stop, start };
}
