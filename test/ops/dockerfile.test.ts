// The Dockerfile, checked without Docker: dockerfilelint's rules (configured by .dockerfilelintrc), plus the habits
// the deployment depends on that no generic linter knows about.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { run as dockerfilelint } from "dockerfilelint";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const dockerfile = readFileSync(join(repoRoot, "Dockerfile"), "utf8");

interface Instruction {
  line: number;
  keyword: string;
  args: string;
}

/** Instructions with continuation lines joined and comments dropped, as Docker reads them (no heredocs here). */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: { line: number; text: string } | undefined;
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (pending === undefined && (line === "" || line.startsWith("#"))) return;
    if (pending !== undefined && line.startsWith("#")) return;
    const current = pending ?? { line: index + 1, text: "" };
    if (line.endsWith("\\")) {
      current.text += `${line.slice(0, -1)} `;
      pending = current;
      return;
    }
    current.text += line;
    pending = undefined;
    const match = /^(\S+)\s*(.*)$/s.exec(current.text.trim());
    if (match) out.push({ line: current.line, keyword: (match[1] ?? "").toUpperCase(), args: match[2] ?? "" });
  });
  return out;
}

/** Stages in order, each with its FROM image (build arguments resolved from their defaults) and alias. */
function stages(list: Instruction[]) {
  const globalArgs = new Map<string, string>();
  const result: Array<{ image: string; alias: string | undefined; body: Instruction[] }> = [];
  for (const instruction of list) {
    if (instruction.keyword === "ARG" && result.length === 0) {
      const [name, value] = instruction.args.split("=", 2);
      if (name && value !== undefined) globalArgs.set(name.trim(), value.trim().replace(/^"|"$/g, ""));
    } else if (instruction.keyword === "FROM") {
      const [image = "", as, alias] = instruction.args.replace(/--platform=\S+\s+/, "").split(/\s+/);
      const resolved = image.replace(/\$\{?(\w+)\}?/g, (_, name: string) => globalArgs.get(name) ?? `<unset ${name}>`);
      result.push({ image: resolved, alias: as?.toUpperCase() === "AS" ? alias : undefined, body: [] });
    } else {
      const current = result.at(-1);
      assert.ok(current, `line ${instruction.line}: ${instruction.keyword} before any FROM`);
      current.body.push(instruction);
    }
  }
  return result;
}

const parsed = stages(instructions(dockerfile));
const final = parsed.at(-1);

function jsonArray(args: string, what: string): string[] {
  let value: unknown;
  try {
    value = JSON.parse(args);
  } catch {
    assert.fail(`${what} is not in exec (JSON array) form: ${args}`);
  }
  assert.ok(Array.isArray(value) && value.every((v) => typeof v === "string"), `${what} is not an array of strings`);
  return value;
}

test("dockerfilelint finds nothing", () => {
  assert.deepEqual(dockerfilelint(repoRoot, dockerfile), []);
});

test("dockerfilelint is live: it still flags a Dockerfile with the usual mistakes", () => {
  // Guards against a .dockerfilelintrc that switches everything off, and shows what the first test is worth.
  const bad = ["FROM node:latest", "run apt-get install curl", "ADD ../secrets /app", "EXPOSE 80:80", ""].join("\n");
  const rules = new Set(dockerfilelint(repoRoot, bad).map((item) => item.rule));
  for (const rule of [
    "latest_tag",
    "uppercase_commands",
    "apt-get_missing_param",
    "add_src_invalid",
    "expose_host_port",
  ]) {
    assert.ok(rules.has(rule), `dockerfilelint no longer reports ${rule}`);
  }
});

test("multi-stage: builds with the full toolchain and installs production dependencies without dev ones", () => {
  assert.ok(parsed.length >= 2, "expected a build stage and a runtime stage");
  const runs = (stage: (typeof parsed)[number]) =>
    stage.body.filter((i) => i.keyword === "RUN").map((i) => i.args.replace(/--mount=\S+\s+/g, ""));
  const build = parsed.find((s) => runs(s).some((r) => /\bnpm run build\b/.test(r)));
  assert.ok(build, "no stage runs `npm run build`");
  assert.ok(
    runs(build).some((r) => /\bnpm ci\b/.test(r) && !/--omit=dev/.test(r)),
    "the build stage must `npm ci` with dev dependencies",
  );
  assert.ok(
    parsed.some((s) => runs(s).some((r) => /\bnpm ci\b.*--omit=dev/.test(r))),
    "nothing installs production dependencies alone (`npm ci --omit=dev`)",
  );
  assert.ok(final && final !== build, "the runtime must not be the build stage");
  assert.ok(
    !runs(final).some((r) => /\bnpm (ci|install)\b/.test(r) && !/--omit=dev/.test(r)),
    "the runtime stage installs dev dependencies",
  );
  const copies = final.body.filter((i) => i.keyword === "COPY").map((i) => i.args);
  assert.ok(
    copies.some((c) => c.includes(`--from=${build.alias}`) && /\bdist\b/.test(c)),
    "dist/ from the build stage",
  );
  assert.ok(
    copies.some((c) => /\bnode_modules\b/.test(c)),
    "production node_modules",
  );
  assert.ok(
    copies.some((c) => /\bprisma\b/.test(c)),
    "prisma/ (the migrations) for the migration Job",
  );
  assert.ok(
    copies.some((c) => /\bpackage\.json\b/.test(c)),
    "package.json (ES module type, package root)",
  );
});

test("every base image is pinned to a tag, the runtime to a slim Node LTS", () => {
  for (const stage of parsed) {
    assert.doesNotMatch(stage.image, /<unset/, `unresolved build argument in ${stage.image}`);
    const digest = stage.image.includes("@sha256:");
    const tag = stage.image.split("/").at(-1)?.split("@")[0]?.split(":")[1];
    assert.ok(digest || (tag !== undefined && tag !== "latest"), `${stage.image} is not pinned`);
  }
  assert.ok(final);
  const match = /^(?:docker\.io\/(?:library\/)?)?node:(\d+)\.\d+\.\d+-[a-z]+-slim\b/.exec(final.image);
  assert.ok(match, `runtime ${final.image} should be node:<exact version>-<debian>-slim`);
  assert.ok(Number(match[1]) % 2 === 0 && Number(match[1]) >= 22, `Node ${match[1]} is not a current LTS line`);
});

test("the runtime stage runs as a non-root numeric user", () => {
  assert.ok(final);
  const users = final.body.filter((i) => i.keyword === "USER");
  const user = users.at(-1)?.args.trim();
  assert.ok(user, "no USER in the runtime stage: the container would run as root");
  const [uid] = user.split(":");
  assert.match(uid ?? "", /^\d+$/, "numeric, so Kubernetes' runAsNonRoot can verify it");
  assert.notEqual(Number(uid), 0);
  const cmdIndex = final.body.findIndex((i) => i.keyword === "CMD");
  assert.ok(final.body.indexOf(users.at(-1) as Instruction) < cmdIndex, "USER must come before CMD");
});

test("exec-form CMD runs node directly, with SIGTERM as the stop signal", () => {
  assert.ok(final);
  const cmds = final.body.filter((i) => i.keyword === "CMD");
  assert.equal(cmds.length, 1);
  assert.deepEqual(jsonArray(cmds[0]?.args ?? "", "CMD"), ["node", "dist/main.js"]);
  assert.ok(!final.body.some((i) => i.keyword === "ENTRYPOINT"), "an ENTRYPOINT would sit between PID 1 and Node");
  assert.equal(final.body.find((i) => i.keyword === "STOPSIGNAL")?.args.trim(), "SIGTERM");
  assert.ok(
    final.body.some((i) => i.keyword === "ENV" && /\bNODE_ENV=production\b/.test(i.args)),
    "NODE_ENV=production in the runtime",
  );
});

test("HEALTHCHECK probes /healthz with node itself (no curl in slim images)", () => {
  assert.ok(final);
  const checks = final.body.filter((i) => i.keyword === "HEALTHCHECK");
  assert.equal(checks.length, 1);
  const match = /^((?:--[a-z-]+=\S+\s+)*)CMD\s+(.*)$/s.exec(checks[0]?.args ?? "");
  assert.ok(match, "HEALTHCHECK [options] CMD [...]");
  const command = jsonArray(match[2] ?? "", "HEALTHCHECK CMD");
  assert.equal(command[0], "node");
  assert.ok(command.some((arg) => arg.includes("/healthz")));
  assert.match(match[1] ?? "", /--timeout=\d+s/);
});

test(".dockerignore keeps local state and secrets out of the build context", () => {
  const path = join(repoRoot, ".dockerignore");
  assert.ok(existsSync(path));
  const lines = readFileSync(path, "utf8")
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  // An allow-list: everything is excluded first, then only what the build reads is let back in.
  assert.equal(lines[0], "**");
  const allowed = lines.filter((l) => l.startsWith("!")).map((l) => l.slice(1).replace(/\/$/, ""));
  for (const needed of [
    "package.json",
    "package-lock.json",
    "tsconfig.json",
    "tsconfig.build.json",
    "prisma",
    "scripts",
    "src",
    "packages",
  ]) {
    assert.ok(allowed.includes(needed), `${needed} is not in the build context`);
  }
  for (const never of ["node_modules", ".git", ".env", "data", "dist", "packages/*/dist", "packages/*/node_modules"]) {
    assert.ok(!allowed.some((a) => a === never || a.startsWith(`${never}/`)), `${never} is let into the build context`);
  }
});

test("npm workspaces: every stage that runs `npm ci` has every workspace's manifest, the runtime the protocol's dist", () => {
  // `npm ci` refuses a lockfile whose workspaces it cannot see, and without the link the built server cannot import
  // @chat-gateway/protocol; both would only show when the image is built or started.
  const workspaces = (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { workspaces: string[] })
    .workspaces;
  assert.ok(workspaces.length >= 2, "the protocol and the SDK are workspaces");
  for (const stage of parsed) {
    const ciAt = stage.body.findIndex((i) => i.keyword === "RUN" && /\bnpm ci\b/.test(i.args));
    if (ciAt < 0) continue;
    const before = stage.body.slice(0, ciAt).filter((i) => i.keyword === "COPY");
    for (const ws of workspaces) {
      assert.ok(
        before.some((c) => c.args.includes(`${ws}/package.json`)),
        `stage ${stage.alias ?? stage.image} runs npm ci without ${ws}/package.json`,
      );
    }
  }
  const copies = (final?.body ?? []).filter((i) => i.keyword === "COPY").map((i) => i.args);
  assert.ok(
    copies.some((c) => c.includes("packages/protocol/dist")),
    "the runtime lacks packages/protocol/dist",
  );
  assert.ok(
    copies.some((c) => c.includes("packages/protocol/package.json")),
    "the runtime lacks its package.json",
  );
});
