// The Dockerfile, built and run without Docker: Debian's buildah builds it (chroot isolation: this machine's hybrid
// cgroups make crun refuse, and there is no container engine) on a base made by .ci/image-base from Debian packages
// plus the official Node binary and npm from the npm registry, passed in through the NODE_IMAGE build argument.
// The built image then runs with `buildah run` (its own CMD, USER, WORKDIR and ENV) against the real PostgreSQL and
// Redis, and has to answer /readyz and carry a chat message from one user to another.
//
// Slow by nature: a cold machine spends minutes in debootstrap and two `npm ci`s. The base (debootstrap tree, Node
// and npm tarballs, base image) and buildah's layer and npm caches are kept across runs; the test's own image and
// container are removed.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { dirname, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  connectDevice,
  createConversation,
  type Device,
  registerUser,
  request,
  waitForEvent,
} from "../helpers/clients.js";
import {
  createScratchDatabase,
  type GatewayProcess,
  REDIS_URL,
  TEST_JWT_SECRET,
  untilListening,
} from "../helpers/gateways.js";
import { freePort } from "../helpers/free-port.js";

const run = promisify(execFile);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const MINUTE = 60_000;

async function onPath(command: string): Promise<boolean> {
  return run("sh", ["-c", `command -v ${command}`]).then(
    () => true,
    () => false,
  );
}

/** Runs a command in the repository and returns its stdout; on failure the error carries its whole output. */
async function sh(command: string, args: string[], timeoutMs: number): Promise<string> {
  try {
    const { stdout } = await run(command, args, { cwd: repoRoot, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
    return stdout.trim();
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(" ")} failed:\n${stdout ?? ""}\n${stderr ?? ""}`, { cause: err });
  }
}

interface ImageConfig {
  User: string;
  Cmd: string[];
  WorkingDir: string;
  Env: string[];
  Healthcheck?: { Test: string[] };
}

const missing = (await Promise.all(["buildah", "debootstrap"].map(async (c) => ((await onPath(c)) ? [] : [c])))).flat();
const skip = missing.length > 0 ? `not on PATH: ${missing.join(", ")} (Debian packages; .ci/run installs them)` : false;
if (skip) console.log(`# image-build: skipped, ${skip}`);

describe("the Dockerfile, built with buildah and run", { skip, timeout: 15 * MINUTE }, () => {
  const tag = `localhost/chat-gateway:test-${randomBytes(4).toString("hex")}`;
  const timings: string[] = [];
  let container: string | undefined;
  let gateway: GatewayProcess | undefined;
  let database: Awaited<ReturnType<typeof createScratchDatabase>> | undefined;
  const devices: Device[] = [];

  async function timed<T>(what: string, work: () => Promise<T>): Promise<T> {
    const started = Date.now();
    const result = await work();
    timings.push(`${what} ${((Date.now() - started) / 1000).toFixed(0)} s`);
    return result;
  }

  before(async () => {
    const base = await timed("base image", () => sh(".ci/image-base", [], 8 * MINUTE));
    // --layers: a rebuild with an unchanged lockfile reuses the `npm ci` layers; --format docker keeps HEALTHCHECK.
    const bud = ["bud", "--isolation", "chroot", "--layers", "--format", "docker", "--build-arg", `NODE_IMAGE=${base}`];
    await timed("buildah bud", () => sh("buildah", [...bud, "-t", tag, "."], 10 * MINUTE));
    container = await sh("buildah", ["from", "--quiet", tag], MINUTE);
  });

  after(async () => {
    for (const device of devices) device.close();
    await gateway?.stop("SIGTERM");
    if (container) await sh("buildah", ["rm", container], MINUTE).catch(() => undefined);
    await sh("buildah", ["rmi", tag], MINUTE).catch(() => undefined);
    await database?.drop();
    console.log(`# image-build timings: ${timings.join(", ")}`);
  });

  /** The image's configuration as Docker reads it (buildah 1.28's --format has no `json` function). */
  async function imageConfig() {
    const inspected = JSON.parse(await sh("buildah", ["inspect", "--type", "image", tag], MINUTE)) as {
      Docker: { config: ImageConfig };
    };
    return inspected.Docker.config;
  }

  test("the image has the Dockerfile's runtime settings: non-root uid 1000, node dist/main.js", async () => {
    const config = await imageConfig();
    assert.equal(config.User, "1000:1000");
    assert.deepEqual(config.Cmd, ["node", "dist/main.js"]);
    assert.equal(config.WorkingDir, "/app");
    assert.ok(config.Env.includes("NODE_ENV=production"));
    assert.ok(config.Healthcheck?.Test.some((arg) => arg.includes("/healthz")));
    assert.equal(await sh("buildah", ["run", "--isolation", "chroot", container!, "--", "id", "-u"], MINUTE), "1000");
    // Only what the runtime reads: no sources, no compiler.
    const listing = await sh("buildah", ["run", "--isolation", "chroot", container!, "--", "ls", "/app"], MINUTE);
    assert.deepEqual(listing.split(/\s+/).sort(), ["dist", "node_modules", "package.json", "packages", "prisma"]);
    // Of the workspaces, only the protocol's manifest and compiled code: the server imports it through node_modules.
    const protocol = await sh(
      "buildah",
      ["run", "--isolation", "chroot", container!, "--", "ls", "/app/packages"],
      MINUTE,
    );
    assert.deepEqual(protocol.split(/\s+/), ["protocol"]);
    const files = await sh(
      "buildah",
      ["run", "--isolation", "chroot", container!, "--", "ls", "/app/packages/protocol"],
      MINUTE,
    );
    assert.deepEqual(files.split(/\s+/).sort(), ["dist", "package.json"]);
  });

  test("runs: migrates on start, answers /readyz, carries a message between two users", async () => {
    database = await createScratchDatabase();
    const port = await freePort();
    const env = {
      PORT: String(port),
      DATABASE_URL: database.url,
      REDIS_URL,
      JWT_SECRET: TEST_JWT_SECRET,
      MIGRATE_ON_START: "on",
      RATE_LIMITS: "off",
    };
    const { Cmd: cmd } = await imageConfig();
    // The image's own CMD, user, working directory and environment; chroot isolation shares the host's network, so
    // the gateway reaches PostgreSQL and Redis on 127.0.0.1 and the test reaches it on `port`.
    const envArgs = Object.entries(env).flatMap(([name, value]) => ["--env", `${name}=${value}`]);
    const child = spawn("buildah", ["run", "--isolation", "chroot", ...envArgs, container!, "--", ...cmd], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    gateway = await timed("start", () => untilListening(child, 2 * MINUTE));
    const url = `http://127.0.0.1:${port}`;

    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { ready: boolean }).ready, true);

    const alice = await registerUser(url);
    const bob = await registerUser(url);
    const conversation = await createConversation(url, alice.accessToken, { type: "direct", userId: bob.user.id });
    const aliceDevice = await connectDevice(url, alice.accessToken);
    const bobDevice = await connectDevice(url, bob.accessToken);
    devices.push(aliceDevice, bobDevice);
    const received = waitForEvent(bobDevice, "message:new", (m) => m.conversationId === conversation.id, 10_000);
    const sent = await request(aliceDevice, "message:send", {
      conversationId: conversation.id,
      clientMsgId: "image-1",
      content: "hello from the built image",
    });
    assert.equal(sent.ok, true);
    const message = await received;
    assert.equal(message.id, sent.message.id);
    assert.equal(message.content, "hello from the built image");
    assert.equal(message.senderId, alice.user.id);
  });
});
