// HAProxy in front of gateway processes, on loopback, for the load-balancer and rolling-restart tests.
// The configuration is the one docs/operations.md recommends: round robin, a SERVERID cookie so long-polling
// clients keep reaching the pod that holds their engine.io session, WebSocket upgrades tunnelled for up to an hour,
// and /readyz health checks so a draining pod stops getting new clients while its existing ones finish.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./free-port.js";

export interface Backend {
  name: string;
  port: number;
}

export interface LoadBalancer {
  url: string;
  port: number;
  config: string;
  logs: string[];
  stop(): Promise<void>;
}

/** The haproxy binary (Debian package `haproxy`), or undefined when it is not installed. */
export function haproxyBinary(): string | undefined {
  for (const candidate of [process.env.HAPROXY_BIN, "/usr/sbin/haproxy", "/usr/local/sbin/haproxy", "haproxy"]) {
    if (!candidate) continue;
    try {
      execFileSync(candidate, ["-v"], { stdio: "ignore" });
      return candidate;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

// Re-exported: several tests that start haproxy also need a port for something else.
export { freePort };

export const HAPROXY_MISSING = "haproxy is not installed (Debian package: haproxy); skipping";

export function haproxyConfig(port: number, backends: Backend[]): string {
  return [
    "global",
    "  maxconn 4096",
    "defaults",
    "  mode http",
    "  timeout connect 5s",
    // Longer than Socket.IO's ping interval + timeout (25 s + 20 s) and a long-poll (pingInterval).
    "  timeout client 60s",
    "  timeout server 60s",
    "  timeout http-keep-alive 5s",
    // An upgraded WebSocket is a tunnel: it lives by this timeout, not by client/server.
    "  timeout tunnel 1h",
    "  option http-server-close",
    // Appends the client's address to X-Forwarded-For; the gateways behind it run with TRUST_PROXY=1, so they take
    // that right-most entry as the client (rate limits) and ignore whatever the client wrote itself.
    "  option forwardfor",
    // A dead or draining pod's cookie must not pin its clients: send them to another server.
    "  option redispatch",
    "  retries 2",
    "frontend chat",
    `  bind 127.0.0.1:${port}`,
    "  default_backend gateways",
    "backend gateways",
    "  balance roundrobin",
    "  cookie SERVERID insert indirect nocache",
    "  option httpchk GET /readyz",
    "  http-check expect status 200",
    "  default-server inter 300ms fall 1 rise 2",
    ...backends.map((b) => `  server ${b.name} 127.0.0.1:${b.port} check cookie ${b.name}`),
    "",
  ].join("\n");
}

/** Starts haproxy in the foreground (-db) on a free port and waits until it answers. */
export async function startHaproxy(backends: Backend[], port?: number): Promise<LoadBalancer> {
  const binary = haproxyBinary();
  if (binary === undefined) throw new Error(HAPROXY_MISSING);
  const listenPort = port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), "gw-haproxy-"));
  const config = haproxyConfig(listenPort, backends);
  const file = join(dir, "haproxy.cfg");
  writeFileSync(file, config);
  const child: ChildProcess = spawn(binary, ["-f", file, "-db"], { stdio: ["ignore", "pipe", "pipe"] });
  const logs: string[] = [];
  child.stdout!.on("data", (d: Buffer) => logs.push(d.toString()));
  child.stderr!.on("data", (d: Buffer) => logs.push(d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${listenPort}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`haproxy exited:\n${logs.join("")}`);
    const ok = await fetch(`${url}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`haproxy did not answer:\n${logs.join("")}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, port: listenPort, config, logs, stop };
}
