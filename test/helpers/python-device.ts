// Drives test/fixtures/python/chat_device.py: a device on Debian's python3-socketio, a Socket.IO v5 client that shares
// no code with ours. Commands go in as JSON lines; acks and server events come back as JSON lines.
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createInterface } from "node:readline";

const SCRIPT = new URL("../fixtures/python/chat_device.py", import.meta.url).pathname;
/** Debian's interpreter, where python3-socketio is installed (a pyenv python3 earlier on PATH would lack it). */
export const PYTHON = "/usr/bin/python3";

export interface PythonLine {
  type: string;
  id?: number;
  event?: string;
  payload?: unknown;
  answer?: unknown;
  message?: string;
  transport?: string;
}

export class PythonDevice {
  readonly lines: PythonLine[] = [];
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiters = new Set<() => void>();
  private nextId = 1;
  stderr = "";

  constructor() {
    this.child = spawn(PYTHON, ["-u", SCRIPT], { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stderr.on("data", (chunk: Buffer) => (this.stderr += chunk.toString()));
    createInterface({ input: this.child.stdout }).on("line", (line) => {
      this.lines.push(JSON.parse(line) as PythonLine);
      for (const wake of this.waiters) wake();
    });
  }

  /** Connects and resolves with the first outcome line: `connected`, `connect_error` or `connect_failed`. */
  async connect(url: string, token: string, transports: ("websocket" | "polling")[]): Promise<PythonLine> {
    this.send({ op: "connect", url, token, transports });
    return this.waitFor((l) => ["connected", "connect_error", "connect_failed"].includes(l.type), "connect outcome");
  }

  /** Emits an event with an ack callback and resolves with the ack's answer. */
  async call<T = Record<string, unknown>>(event: string, payload: unknown): Promise<T> {
    const id = this.nextId++;
    this.send({ op: "call", id, event, payload });
    const line = await this.waitFor((l) => l.type === "ack" && l.id === id, `ack of ${event}`);
    return line.answer as T;
  }

  /** Server events of one name received so far. */
  events(name: string): unknown[] {
    return this.lines.filter((l) => l.type === "event" && l.event === name).map((l) => l.payload);
  }

  waitFor(match: (line: PythonLine) => boolean, what: string, timeoutMs = 10_000): Promise<PythonLine> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.lines.find(match);
        if (found === undefined) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(found);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`python device: no ${what} within ${timeoutMs} ms; stderr: ${this.stderr.slice(-500)}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.send({ op: "close" });
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 3_000);
    await exited;
    clearTimeout(timer);
  }

  private send(command: object): void {
    this.child.stdin.write(`${JSON.stringify(command)}\n`);
  }
}
