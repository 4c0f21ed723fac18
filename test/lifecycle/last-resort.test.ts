// The process-level safety net, in a real Node process with Node's default error handling: an unhandled rejection
// and an uncaught exception are logged (without the token a message carried) and counted in
// chat_uncaught_errors_total{kind}, and the process keeps serving.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { after, test } from "node:test";
import { eventually } from "../helpers/clients.js";

let child: ChildProcess | undefined;
after(() => child?.kill("SIGKILL"));

test("escaped errors are logged and counted, and the process keeps serving", async () => {
  const c = spawn(process.execPath, ["--import", "tsx", "test/fixtures/last-resort-child.ts"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  child = c;
  const lines: string[] = [];
  let exited = false;
  c.once("exit", () => (exited = true));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child did not start:\n${lines.join("\n")}`)), 20_000);
    const onLine = (line: string) => {
      lines.push(line);
      const entry = line.startsWith("{") ? (JSON.parse(line) as { msg?: string; port?: number }) : {};
      if (entry.msg === "listening" && entry.port !== undefined) {
        clearTimeout(timer);
        resolve(entry.port);
      }
    };
    createInterface({ input: c.stdout! }).on("line", onLine);
    createInterface({ input: c.stderr! }).on("line", onLine);
  });
  const base = `http://127.0.0.1:${port}`;

  for (let i = 0; i < 2; i++) assert.equal(await (await fetch(`${base}/escape`)).text(), "serving");
  await eventually(() => lines.filter((l) => l.includes("uncaught error: kept serving")).length === 5, 5_000, "logs");
  assert.equal(exited, false, "the process is still running");
  assert.equal(await (await fetch(`${base}/`)).text(), "serving", "and still answering");

  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /chat_uncaught_errors_total\{kind="unhandled_rejection"\} 3\b/);
  assert.match(metrics, /chat_uncaught_errors_total\{kind="uncaught_exception"\} 2\b/);

  const logged = lines.filter((l) => l.includes("uncaught error: kept serving")).map((l) => JSON.parse(l) as object);
  const text = JSON.stringify(logged);
  assert.ok(text.includes("thrown from a timer") && text.includes("escaped while starting"), "the errors are logged");
  assert.ok(!text.includes("eyJhbGciOiJIUzI1NiJ9"), "a token in an error message is redacted");
  assert.ok(
    logged.every((l) => (l as { level?: number }).level === 50),
    "at error level",
  );
});
