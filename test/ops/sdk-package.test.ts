// The SDK as an app gets it: both workspaces packed with `npm pack` (their prepack builds them), the tarballs
// installed into a fresh app in a temporary directory outside the repository (socket.io-client and zod from the
// registry), a small app type-checked against the published .d.ts files and bundled with esbuild, and the installed
// tree searched for anything of the server. The SDK used from the repository's sources proves none of this: the
// sources resolve through tsconfig paths, the published package through its exports map and dist alone.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const work = mkdtempSync(join(tmpdir(), "chat-sdk-pack-"));
const app = join(work, "app");
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

interface PackResult {
  name: string;
  filename: string;
  files: { path: string }[];
}
let packed: PackResult[] = [];
let lock: { packages: Record<string, { version?: string; link?: boolean }> };

/** The server's own dependencies, none of which an app may receive, except the two the SDK shares with it. */
const serverManifest = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as {
  dependencies: Record<string, string>;
};
const SHARED = new Set(["socket.io-client", "zod", "@chat-gateway/protocol"]);
const SERVER_ONLY = Object.keys(serverManifest.dependencies).filter((d) => !SHARED.has(d));
/** And their usual transitive company, named explicitly so that the check does not depend on the list above only. */
const NEVER = [/^prisma$/, /^@prisma\//, /^pg$/, /^pg-/, /^bullmq$/, /^fastify$/, /^@fastify\//, /^ioredis$/];
NEVER.push(/^redis$/, /^@redis\//, /^sharp$/, /^@img\//, /^@aws-sdk\//, /^socket\.io$/, /^engine\.io$/, /^pino$/);

function sh(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 240_000 });
}

before(() => {
  assert.ok(relative(repoRoot, work).startsWith(".."), "the app must live outside the repository");
  // One `npm pack` for both workspaces; --json reports each tarball's name and file list.
  const out = sh(
    npm,
    ["pack", "--json", "--pack-destination", work, "-w", "packages/protocol", "-w", "packages/sdk"],
    repoRoot,
  );
  packed = JSON.parse(out.slice(out.indexOf("["))) as PackResult[];
  const tarball = (name: string) => `file:../${packed.find((p) => p.name === name)?.filename}`;
  mkdirSync(app);
  writeFileSync(
    join(app, "package.json"),
    JSON.stringify(
      {
        name: "sdk-consumer",
        private: true,
        type: "module",
        dependencies: {
          "@chat-gateway/protocol": tarball("@chat-gateway/protocol"),
          "@chat-gateway/sdk": tarball("@chat-gateway/sdk"),
        },
        // The SDK asks for @chat-gateway/protocol by version; this app (like one before the first publish) takes it
        // from the tarball, never from a registry.
        overrides: { "@chat-gateway/protocol": "$@chat-gateway/protocol" },
      },
      null,
      2,
    ),
  );
  sh(npm, ["install", "--no-audit", "--no-fund", "--prefer-offline", "--ignore-scripts", "--loglevel=error"], app);
  lock = JSON.parse(readFileSync(join(app, "package-lock.json"), "utf8")) as typeof lock;
});

after(() => rmSync(work, { recursive: true, force: true }));

test("the tarballs carry the compiled code and its types, nothing of the server", () => {
  assert.deepEqual(packed.map((p) => p.name).sort(), ["@chat-gateway/protocol", "@chat-gateway/sdk"]);
  for (const p of packed) {
    const files = p.files.map((f) => f.path);
    assert.ok(files.includes("dist/index.js") && files.includes("dist/index.d.ts"), `${p.name}: ${files.join(", ")}`);
    assert.ok(!files.some((f) => /(^|\/)(test|node_modules|prisma)\//.test(f) || f.endsWith(".tsbuildinfo")), p.name);
  }
  const protocol = packed.find((p) => p.name === "@chat-gateway/protocol");
  assert.ok(
    protocol?.files.some((f) => f.path === "dist/schemas.d.ts"),
    "the zod schemas are published",
  );
});

test("the app's installed tree has the SDK, socket.io-client and zod, and no server dependency", () => {
  const installed = Object.keys(lock.packages)
    .filter((k) => k.startsWith("node_modules/"))
    .map((k) => k.slice(k.lastIndexOf("node_modules/") + "node_modules/".length));
  for (const wanted of ["@chat-gateway/sdk", "@chat-gateway/protocol", "socket.io-client", "zod"]) {
    assert.ok(installed.includes(wanted), `${wanted} is not installed: ${installed.join(", ")}`);
  }
  const leaked = installed.filter((n) => SERVER_ONLY.includes(n) || NEVER.some((re) => re.test(n)));
  assert.deepEqual(leaked, [], `server dependencies came along: ${leaked.join(", ")}`);
  // The whole tree is socket.io-client's and zod's: a handful of packages, not the server's hundreds.
  assert.ok(installed.length < 20, `${installed.length} packages installed: ${installed.join(", ")}`);
  for (const dir of ["prisma", "pg", "bullmq", "fastify", "ioredis", "sharp", "@aws-sdk", "@prisma"]) {
    assert.ok(!existsSync(join(app, "node_modules", dir)), `node_modules/${dir} exists`);
  }
});

const APP_SOURCE = `import { ChatApiError, ChatClient, ChatHttpApi, type MarkerEvent, type Message } from "@chat-gateway/sdk";
import type { ClientToServerEvents, ErrorCode, ServerToClientEvents } from "@chat-gateway/protocol";
import { SendPayload } from "@chat-gateway/protocol/schemas";

export async function start(baseUrl: string, username: string, password: string): Promise<ChatClient> {
  const session = await new ChatHttpApi({ baseUrl }).login({ username, password, deviceName: "app" });
  const client = new ChatClient({ url: baseUrl, auth: session, transports: ["websocket"] });
  client.on("message", (m: Message) => render(m.conversationId, m.seq, m.content));
  client.on("conversationRead", (e: MarkerEvent) => void e.seq);
  await client.connect();
  await client.send("conversation-id", "hello");
  return client;
}

export function codeOf(err: unknown): ErrorCode | "network_error" | "timeout" | undefined {
  return err instanceof ChatApiError ? err.code : undefined;
}

export const valid = (payload: unknown): boolean => SendPayload.safeParse(payload).success;
export type Events = keyof ClientToServerEvents | keyof ServerToClientEvents;

function render(conversationId: string, seq: number, content: string): void {
  document.title = conversationId + "#" + seq + ": " + content;
}
`;

test("a small app type-checks against the published types (strict, no skipLibCheck)", () => {
  writeFileSync(join(app, "app.ts"), APP_SOURCE);
  writeFileSync(
    join(app, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        lib: ["ES2023", "DOM"],
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: [],
      },
      files: ["app.ts"],
    }),
  );
  const tsc = (): string => {
    try {
      return sh(process.execPath, [join(repoRoot, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], app);
    } catch (err) {
      return (err as { stdout?: string }).stdout || String(err);
    }
  };
  assert.equal(tsc(), "", "tsc failed in the app");
  // And the check is real: a wrong use of the SDK's types fails it.
  writeFileSync(join(app, "app.ts"), `${APP_SOURCE}\nexport const wrong: Message = { id: 1 };\n`);
  assert.match(tsc(), /app\.ts\(\d+,\d+\): error TS\d+/);
  writeFileSync(join(app, "app.ts"), APP_SOURCE);
});

test("the app bundles for the browser with esbuild; zod stays out when only the SDK is imported", async () => {
  writeFileSync(join(app, "app.ts"), APP_SOURCE);
  const full = await build({
    absWorkingDir: app,
    entryPoints: ["app.ts"],
    bundle: true,
    format: "esm",
    platform: "browser",
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  const inputs = Object.keys(full.metafile.inputs);
  assert.ok(
    inputs.some((i) => i.includes("node_modules/@chat-gateway/sdk/dist/")),
    "the SDK comes from its dist",
  );
  assert.ok(
    inputs.some((i) => i.includes("node_modules/socket.io-client/")),
    "socket.io-client is bundled",
  );

  writeFileSync(join(app, "sdk-only.ts"), `export { ChatClient, ChatHttpApi } from "@chat-gateway/sdk";\n`);
  const sdkOnly = await build({
    absWorkingDir: app,
    entryPoints: ["sdk-only.ts"],
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  const sdkInputs = Object.keys(sdkOnly.metafile.inputs);
  assert.ok(!sdkInputs.some((i) => i.includes("node_modules/zod/")), "zod is bundled although no schema is used");
  assert.ok(!sdkInputs.some((i) => /schemas\.js$/.test(i)), "the schemas entry point is bundled");
});

test("Node resolves the installed packages through their exports maps", () => {
  const out = sh(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `const sdk = await import("@chat-gateway/sdk");
       const { ERROR_STATUS } = await import("@chat-gateway/protocol");
       const { SendPayload } = await import("@chat-gateway/protocol/schemas");
       const ok = SendPayload.safeParse({ conversationId: "c", clientMsgId: "m", content: "hi" }).success;
       console.log(typeof sdk.ChatClient, typeof sdk.ChatHttpApi, ERROR_STATUS.not_found, ok);`,
    ],
    app,
  );
  assert.equal(out.trim(), "function function 404 true");
});
