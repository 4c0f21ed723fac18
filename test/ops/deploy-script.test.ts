// scripts/deploy.sh, the plain-kubectl release: the old migration Job goes, the Job and what it needs are applied and
// waited for, and only a completed migration lets the gateway roll. There is no cluster here, so `kubectl` is a
// stand-in on PATH that records its calls and answers the Job's state; `kubectl kustomize` is the real one, so the
// script renders the real overlay.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

const run = promisify(execFile);
let dir: string;
let realKubectl: string;

before(async () => {
  realKubectl = (await run("bash", ["-c", "command -v kubectl"])).stdout.trim();
  dir = mkdtempSync(join(tmpdir(), "chat-deploy-"));
  writeFileSync(
    join(dir, "kubectl"),
    `#!/usr/bin/env bash
echo "$*" >> "$KUBECTL_LOG"
[[ $1 == kustomize ]] && exec "$REAL_KUBECTL" "$@"
[[ "$*" == *"get job/"* ]] && printf '%s' "$JOB_STATE"
exit 0
`,
  );
  chmodSync(join(dir, "kubectl"), 0o755);
});

after(() => rmSync(dir, { recursive: true, force: true }));

async function deploy(jobState: string) {
  const log = join(dir, `calls-${jobState}.log`);
  writeFileSync(log, "");
  const env = {
    ...process.env,
    PATH: `${dir}:${process.env.PATH}`,
    KUBECTL_LOG: log,
    REAL_KUBECTL: realKubectl,
    JOB_STATE: jobState,
    DEPLOY_POLL_SECONDS: "0.2",
  };
  const result = await run("bash", ["scripts/deploy.sh", "k8s/overlays/prod", "--timeout", "2s"], { env }).then(
    (r) => ({ code: 0, stderr: r.stderr }),
    (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
  );
  const calls = readFileSync(log, "utf8").trim().split("\n");
  return { ...result, calls: calls.map((c) => c.replace(/\/tmp\/\S+/g, "<rendered>")) };
}

test("a completed migration: delete the old Job, apply phase one, wait, apply everything, watch the rollout", async () => {
  const { code, calls } = await deploy("Complete");
  assert.equal(code, 0);
  assert.deepEqual(calls, [
    `kustomize k8s/overlays/prod`,
    "-n chat delete job chat-gateway-migrate --ignore-not-found --wait=true",
    "apply -f <rendered> -l app.kubernetes.io/component!=gateway",
    `-n chat get job/chat-gateway-migrate -o jsonpath={.status.conditions[?(@.status=="True")].type}`,
    "apply -f <rendered>",
    "-n chat rollout status deployment/chat-gateway --timeout=2s",
  ]);
});

test("a failed migration stops before the gateway is touched and shows the Job's logs", async () => {
  const { code, calls, stderr } = await deploy("Failed");
  assert.equal(code, 1);
  assert.match(stderr, /migration Failed; the gateway was not changed/);
  assert.ok(calls.includes("-n chat logs job/chat-gateway-migrate --all-containers --tail=200"));
  assert.ok(!calls.includes("apply -f <rendered>"), "applied the gateway after a failed migration");
  assert.ok(!calls.some((c) => c.includes("rollout")));
});

test("a migration still running at the timeout also stops the release", async () => {
  const { code, calls } = await deploy("");
  assert.equal(code, 1);
  assert.ok(!calls.includes("apply -f <rendered>"));
});
