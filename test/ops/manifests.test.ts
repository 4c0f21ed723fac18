// The Kubernetes manifests: every overlay renders offline, every object matches the Kubernetes schema with unknown
// fields rejected, and the deployment properties the gateway relies on (drain timing, probes, hardening, stickiness,
// network boundary, sizing) hold in each overlay. Needs `kubectl` for `kubectl kustomize`; no cluster, no network.
import assert from "node:assert/strict";
import { before, test } from "node:test";
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { IHorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import type { IJob } from "kubernetes-models/batch/v1/Job";
import type { IIngress } from "kubernetes-models/networking.k8s.io/v1/Ingress";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IPodSpec } from "kubernetes-models/v1/PodSpec";
import type { IPodTemplateSpec } from "kubernetes-models/v1/PodTemplateSpec";
import type { ISecret } from "kubernetes-models/v1/Secret";
import type { IService } from "kubernetes-models/v1/Service";
import {
  createValidator,
  describe as describeObject,
  overlays,
  readManifestFile,
  render,
  type KubeObject,
  type Validator,
} from "../../scripts/validate-manifests.js";

/** The HTTPRoute and ServiceMonitor fields these tests read (scripts/crd-shapes.ts validates the objects). */
interface HttpRoute {
  spec: {
    parentRefs: Array<{ name: string; namespace?: string }>;
    rules: Array<{
      matches?: Array<{ path?: { type?: string; value?: string } }>;
      backendRefs?: Array<{ kind?: string; name: string; port?: number }>;
      timeouts?: { request?: string };
    }>;
  };
}
interface ServiceMonitor {
  spec: { selector: { matchLabels?: Record<string, string> }; endpoints: Array<{ port?: string; path?: string }> };
}

const IMAGE = "ghcr.io/example/chat-gateway";
const GATEWAY = "chat-gateway";
const SECRET = "chat-gateway-secrets";
/** Seconds past DRAIN_TIMEOUT_MS after which the gateway exits even if its drain has not finished. */
const FORCED_EXIT_S = 2;
/** Keys that must never sit in a ConfigMap (they are credentials, or URLs that embed credentials). */
const SECRET_KEYS = [/^DATABASE_URL$/, /^REDIS_URL$/, /SECRET/, /PRIVATE/, /PASSWORD/, /^FCM_/, /^PUSH_WEBHOOK_/];

const rendered = new Map<string, KubeObject[]>();
const template = readManifestFile("k8s/base/secret.template.yaml");
let validator: Validator;

before(async () => {
  const results = await Promise.all(overlays.map(async (dir) => [dir, await render(dir)] as const));
  for (const [dir, objects] of results) rendered.set(dir, objects);
  // Widget: a kind no schema exists for, so that the negative test can show it is refused rather than waved through.
  const unknownKind = { apiVersion: "example.com/v1", kind: "Widget" };
  validator = createValidator([...[...rendered.values()].flat(), ...template, unknownKind]);
});

function objectsOf(overlay: string): KubeObject[] {
  const objects = rendered.get(overlay);
  assert.ok(objects, `${overlay} was not rendered`);
  return objects;
}

function find<T>(objects: KubeObject[], kind: string, name: string): T {
  const found = objects.filter((o) => o.kind === kind && o.metadata?.name === name);
  assert.equal(found.length, 1, `expected exactly one ${kind}/${name}`);
  return found[0] as T;
}

/** ConfigMaps and Secrets from generators carry a content hash suffix: resolve the name a pod actually references. */
function referenced<T>(objects: KubeObject[], kind: "ConfigMap" | "Secret", name: string): T | undefined {
  return objects.find((o) => o.kind === kind && o.metadata?.name === name) as T | undefined;
}

function envFromNames(container: IContainer, kind: "configMapRef" | "secretRef"): string[] {
  return (container.envFrom ?? []).flatMap((source) => (source[kind]?.name ? [source[kind].name] : []));
}

interface Workload {
  object: KubeObject;
  template: IPodTemplateSpec;
}

function workloads(objects: KubeObject[]): Workload[] {
  return objects.flatMap((object) => {
    if (!["Deployment", "StatefulSet", "Job", "DaemonSet"].includes(object.kind)) return [];
    const spec = object.spec as { template?: IPodTemplateSpec } | undefined;
    assert.ok(spec?.template, `${describeObject(object)} has no pod template`);
    return [{ object, template: spec.template }];
  });
}

function podSpec(w: { template: IPodTemplateSpec }): IPodSpec {
  assert.ok(w.template.spec, "pod template without spec");
  return w.template.spec;
}

function gatewayParts(objects: KubeObject[]) {
  const deployment = find<IDeployment>(objects, "Deployment", GATEWAY);
  const template = deployment.spec?.template;
  assert.ok(template?.spec);
  const container = template.spec.containers.find((c) => c.name === "gateway");
  assert.ok(container, "the Deployment has no `gateway` container");
  const configName = envFromNames(container, "configMapRef")[0];
  assert.ok(configName, "the gateway container takes no ConfigMap through envFrom");
  const config = referenced<IConfigMap>(objects, "ConfigMap", configName);
  assert.ok(config?.data, `ConfigMap ${configName} is not part of the overlay`);
  return { deployment, template, pod: template.spec, container, config: config.data };
}

/** Kubernetes quantities as numbers: cores for CPU, bytes for memory. Only the suffixes these manifests may use. */
function quantity(value: string | number | undefined): number {
  assert.notEqual(value, undefined, "missing quantity");
  const text = String(value);
  const match = /^([0-9.]+)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(text);
  assert.ok(match, `unsupported quantity ${text}`);
  const units: Record<string, number> = {
    m: 1e-3,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
  };
  return Number(match[1]) * (match[2] ? (units[match[2]] ?? NaN) : 1);
}

function preStopSeconds(container: IContainer): number {
  const preStop = container.lifecycle?.preStop;
  assert.ok(preStop, "no preStop hook");
  if (preStop.sleep) return preStop.sleep.seconds;
  const command = preStop.exec?.command ?? [];
  assert.equal(command[0], "sleep", "preStop should be a plain pause");
  const seconds = Number(command[1]);
  assert.ok(Number.isFinite(seconds), `preStop sleep of ${command[1]}`);
  return seconds;
}

function matches(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  assert.ok(selector && Object.keys(selector).length > 0, "empty selector");
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

// --- Schema -----------------------------------------------------------------------------------------------------

test("every object of every overlay matches the Kubernetes schema, unknown fields rejected", () => {
  const problems: Record<string, string[]> = {};
  for (const overlay of overlays) {
    const objects = objectsOf(overlay);
    assert.ok(objects.length > 0, `${overlay} rendered nothing`);
    for (const object of objects) {
      const found = validator.validate(object);
      if (found.length > 0) problems[`${overlay} ${describeObject(object)}`] = found;
    }
  }
  assert.deepEqual(problems, {});
});

test("the validator rejects typos, wrong types, bad enum values and unknown kinds", () => {
  const good = find<IDeployment>(objectsOf("k8s/overlays/prod"), "Deployment", GATEWAY);
  const bad = structuredClone(good) as unknown as {
    spec: { replica: number; template: { spec: { containers: Array<Record<string, Record<string, unknown>>> } } };
  } & KubeObject;
  bad.spec.replica = 3;
  const container = bad.spec.template.spec.containers[0];
  assert.ok(container?.readinessProbe && container.securityContext);
  container.readinessProbe.httpGett = container.readinessProbe.httpGet;
  delete container.readinessProbe.httpGet;
  container.securityContext.readOnlyRootFileSystem = true;

  // The gap this validator closes: the models' own schema check accepts all three typos.
  assert.deepEqual(validator.modelErrors(bad), []);
  assert.deepEqual(validator.validate(bad), [
    ".spec.template.spec.containers[0].readinessProbe.httpGett: unknown field (not in IProbe)",
    ".spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem: unknown field (not in ISecurityContext)",
    ".spec.replica: unknown field (not in IDeploymentSpec)",
  ]);

  const wrong = structuredClone(good);
  assert.ok(wrong.spec?.template.spec?.topologySpreadConstraints?.[0]);
  (wrong.spec as unknown as Record<string, unknown>).minReadySeconds = "10";
  (wrong.spec.template.spec.topologySpreadConstraints[0] as unknown as Record<string, unknown>).whenUnsatisfiable =
    "Never";
  const problems = validator.validate(wrong as KubeObject);
  assert.ok(problems.includes(".spec.minReadySeconds: must be integer"), problems.join("\n"));
  assert.ok(
    problems.some((p) => p.startsWith(".spec.template.spec.topologySpreadConstraints[0].whenUnsatisfiable:")),
    problems.join("\n"),
  );

  assert.match(validator.validate({ apiVersion: "example.com/v1", kind: "Widget" })[0] ?? "", /no schema/);
});

test("the HTTPRoute and ServiceMonitor checks refuse unknown fields, bad values and experimental fields", () => {
  const route = structuredClone(find<HttpRoute & KubeObject>(objectsOf("k8s/overlays/prod"), "HTTPRoute", GATEWAY));
  const monitor = structuredClone(
    find<ServiceMonitor & KubeObject>(objectsOf("k8s/overlays/prod"), "ServiceMonitor", GATEWAY),
  );
  assert.deepEqual(validator.validate(route), []);
  assert.deepEqual(validator.validate(monitor), []);
  const rule = route.spec.rules[0] as Record<string, unknown> & HttpRoute["spec"]["rules"][number];
  rule.sessionPersistence = { type: "Cookie", sessionName: "chat-gw-route" };
  rule.timeouts = { request: "1 hour" };
  delete rule.backendRefs?.[0]?.port;
  (route.spec as Record<string, unknown>).hostname = "chat.example.com";
  assert.deepEqual(validator.validate(route).sort(), [
    ".spec.hostname: unknown field",
    ".spec.rules[0].backendRefs[0].port: required for a Service",
    ".spec.rules[0].sessionPersistence: unknown field",
    `.spec.rules[0].timeouts.request: "1 hour" does not match /^([0-9]{1,5}(h|m|s|ms)){1,4}$/`,
  ]);
  const endpoint = monitor.spec.endpoints[0] as Record<string, unknown>;
  endpoint.prot = endpoint.port;
  endpoint.scheme = "tcp";
  delete (monitor.spec as Partial<ServiceMonitor["spec"]>).selector;
  assert.deepEqual(validator.validate(monitor).sort(), [
    ".spec.endpoints[0].prot: unknown field",
    '.spec.endpoints[0].scheme: "tcp" is not one of http, https',
    ".spec.selector: required",
  ]);
});

test("the Secret template is a valid Secret of placeholders only, and is not part of any overlay", () => {
  assert.equal(template.length, 1);
  const secret = template[0] as ISecret & KubeObject;
  assert.deepEqual(validator.validate(secret), []);
  assert.equal(secret.metadata?.name, SECRET);
  assert.equal(secret.data, undefined, "use stringData so the placeholders stay readable");
  const values = Object.entries(secret.stringData ?? {});
  for (const key of ["DATABASE_URL", "REDIS_URL", "JWT_SECRET", "SERVICE_JWT_SECRET"]) {
    assert.ok(
      values.some(([k]) => k === key),
      `the template lacks ${key}`,
    );
  }
  for (const [key, value] of values) {
    assert.ok(value === "" || value === "REPLACE_ME", `${key} holds something other than a placeholder`);
  }
  // A prod apply must never overwrite the real Secret with placeholders.
  assert.equal(referenced(objectsOf("k8s/overlays/prod"), "Secret", SECRET), undefined);
  assert.ok(!objectsOf("k8s/overlays/prod").some((o) => o.kind === "Secret"), "prod renders a Secret");
});

// --- Properties every overlay must keep --------------------------------------------------------------------------

for (const overlay of overlays) {
  test(`${overlay}: every pod runs non-root, read-only, without capabilities or an API token`, () => {
    const found = workloads(objectsOf(overlay));
    assert.ok(found.length >= 2, "expected at least the gateway Deployment and the migration Job");
    for (const w of found) {
      const name = describeObject(w.object);
      const pod = podSpec(w);
      assert.equal(pod.automountServiceAccountToken, false, `${name}: service account token mounted`);
      assert.equal(pod.securityContext?.runAsNonRoot, true, `${name}: runAsNonRoot`);
      assert.ok((pod.securityContext?.runAsUser ?? 0) > 0, `${name}: runAsUser must be a non-zero uid`);
      assert.equal(pod.securityContext?.seccompProfile?.type, "RuntimeDefault", `${name}: seccomp`);
      assert.notEqual(pod.hostNetwork, true, `${name}: hostNetwork`);
      for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
        const sc = c.securityContext;
        assert.equal(sc?.readOnlyRootFilesystem, true, `${name}/${c.name}: readOnlyRootFilesystem`);
        assert.equal(sc?.allowPrivilegeEscalation, false, `${name}/${c.name}: allowPrivilegeEscalation`);
        assert.notEqual(sc?.privileged, true, `${name}/${c.name}: privileged`);
        assert.deepEqual(sc?.capabilities?.drop, ["ALL"], `${name}/${c.name}: capabilities must drop ALL`);
        assert.equal(sc?.capabilities?.add, undefined, `${name}/${c.name}: adds capabilities`);
        assert.notEqual(sc?.runAsUser, 0, `${name}/${c.name}: runs as root`);
      }
    }
  });

  test(`${overlay}: the gateway and the migration Job have a writable emptyDir /tmp and nothing else writable`, () => {
    const objects = objectsOf(overlay);
    for (const w of workloads(objects).filter(
      (w) => w.object.metadata?.labels?.["app.kubernetes.io/name"] === GATEWAY,
    )) {
      const pod = podSpec(w);
      for (const c of pod.containers) {
        assert.deepEqual(
          (c.volumeMounts ?? []).map((m) => m.mountPath),
          ["/tmp"],
          `${describeObject(w.object)}/${c.name}`,
        );
        const volume = pod.volumes?.find((v) => v.name === c.volumeMounts?.[0]?.name);
        assert.ok(volume?.emptyDir, `${describeObject(w.object)}: /tmp is not an emptyDir`);
      }
    }
  });

  test(`${overlay}: startup, readiness (/readyz) and liveness (/healthz) probes use the internal operations port`, () => {
    const { container, config } = gatewayParts(objectsOf(overlay));
    const port = container.ports?.find((p) => p.name === "http");
    assert.ok(port, "no port named http");
    assert.equal(String(port.containerPort), config.PORT, "containerPort and PORT disagree");
    const metrics = container.ports?.find((p) => p.name === "metrics");
    assert.ok(metrics, "no port named metrics");
    assert.equal(
      String(metrics.containerPort),
      config.METRICS_PORT,
      "containerPort `metrics` and METRICS_PORT disagree",
    );
    assert.notEqual(metrics.containerPort, port.containerPort);
    const probes = { startupProbe: "/healthz", readinessProbe: "/readyz", livenessProbe: "/healthz" } as const;
    for (const [probe, path] of Object.entries(probes) as Array<[keyof typeof probes, string]>) {
      const get = container[probe]?.httpGet;
      assert.ok(get, `${probe} missing or not an HTTP probe`);
      assert.equal(get.path, path, `${probe} path`);
      assert.ok(get.port === "metrics" || get.port === metrics.containerPort, `${probe} is not on the metrics port`);
    }
    // Liveness must be more patient than readiness: readiness reacts, liveness only kills a stuck process.
    const live = container.livenessProbe ?? {};
    const ready = container.readinessProbe ?? {};
    assert.ok(
      (live.periodSeconds ?? 10) * (live.failureThreshold ?? 3) >
        (ready.periodSeconds ?? 10) * (ready.failureThreshold ?? 3),
    );
  });

  test(`${overlay}: termination grace outlasts the preStop pause plus the drain`, () => {
    const { pod, container, config } = gatewayParts(objectsOf(overlay));
    const preStop = preStopSeconds(container);
    assert.ok(preStop >= 3 && preStop <= 15, `a preStop pause of ${preStop}s`);
    const drainMs = Number(config.DRAIN_TIMEOUT_MS ?? 20_000);
    assert.ok(Number.isFinite(drainMs) && drainMs > 0, "DRAIN_TIMEOUT_MS");
    const grace = pod.terminationGracePeriodSeconds ?? 30;
    // src/main.ts forces the exit FORCED_EXIT_S after the drain timeout; SIGKILL must not come before that.
    const needed = preStop + drainMs / 1000 + FORCED_EXIT_S;
    assert.ok(grace > needed, `terminationGracePeriodSeconds ${grace} <= preStop + drain + forced exit = ${needed}`);
  });

  test(`${overlay}: every container has CPU and memory requests and a memory limit, and the heap fits`, () => {
    const objects = objectsOf(overlay);
    for (const w of workloads(objects)) {
      for (const c of podSpec(w).containers) {
        const name = `${describeObject(w.object)}/${c.name}`;
        const { requests, limits } = c.resources ?? {};
        const cpu = quantity(requests?.cpu);
        const memory = quantity(requests?.memory);
        assert.ok(cpu > 0 && memory > 0, `${name}: requests`);
        assert.ok(quantity(limits?.memory) >= memory, `${name}: memory limit below request`);
        if (limits?.cpu !== undefined) assert.ok(quantity(limits.cpu) >= cpu, `${name}: CPU limit below request`);
      }
    }
    const { container, config } = gatewayParts(objects);
    const heapMiB = Number(/--max-old-space-size=(\d+)/.exec(config.NODE_OPTIONS ?? "")?.[1]);
    const limitMiB = quantity(container.resources?.limits?.memory) / 2 ** 20;
    assert.ok(heapMiB > 0, "NODE_OPTIONS sets no --max-old-space-size");
    assert.ok(heapMiB <= 0.8 * limitMiB, `heap ${heapMiB} MiB leaves too little of the ${limitMiB} MiB limit`);
  });

  test(`${overlay}: configuration is split into a ConfigMap without secrets and the chat-gateway-secrets Secret`, () => {
    const objects = objectsOf(overlay);
    const { container, config } = gatewayParts(objects);
    assert.equal(config.MIGRATE_ON_START, "off", "pods must leave migrations to the Job");
    for (const key of Object.keys(config)) {
      assert.ok(!SECRET_KEYS.some((re) => re.test(key)), `${key} belongs in the Secret, not the ConfigMap`);
    }
    const secrets = envFromNames(container, "secretRef");
    assert.equal(secrets.length, 1);
    assert.ok(secrets[0]?.startsWith(SECRET), `the gateway reads ${secrets[0]}, not ${SECRET}`);
    assert.equal(container.env, undefined, "settings belong in the ConfigMap or the Secret");

    const job = find<IJob>(objects, "Job", `${GATEWAY}-migrate`);
    const migrate = job.spec?.template.spec?.containers[0];
    assert.ok(migrate);
    assert.deepEqual(envFromNames(migrate, "configMapRef"), envFromNames(container, "configMapRef"));
    assert.deepEqual(envFromNames(migrate, "secretRef"), secrets);
  });

  test(`${overlay}: one pinned image for the gateway and the migration Job`, () => {
    const objects = objectsOf(overlay);
    const { container } = gatewayParts(objects);
    const job = find<IJob>(objects, "Job", `${GATEWAY}-migrate`);
    const migrate = job.spec?.template.spec;
    assert.ok(migrate);
    const image = container.image ?? "";
    assert.match(image, new RegExp(`^${IMAGE.replaceAll(".", "\\.")}:[A-Za-z0-9_.-]+$`));
    assert.doesNotMatch(image, /:latest$/);
    assert.equal(migrate.containers[0]?.image, image);
    assert.deepEqual(migrate.containers[0]?.command, ["node", "dist/db/migrate-cli.js"]);
    assert.equal(migrate.restartPolicy, "Never");
    assert.ok(
      (job.spec?.backoffLimit ?? 6) > 0 && job.spec?.activeDeadlineSeconds,
      "the Job must retry, within a bound",
    );
  });

  test(`${overlay}: the Deployment leaves replicas to the HPA, rolls with surge and spreads over zones and nodes`, () => {
    const objects = objectsOf(overlay);
    const { deployment, template, pod } = gatewayParts(objects);
    assert.equal(deployment.spec?.replicas, undefined, "a replicas field fights the HorizontalPodAutoscaler");
    assert.equal(deployment.spec?.strategy?.rollingUpdate?.maxUnavailable, 0);
    assert.ok(matches(deployment.spec?.selector.matchLabels, template.metadata?.labels));
    const spread = pod.topologySpreadConstraints ?? [];
    for (const key of ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]) {
      const constraint = spread.find((c) => c.topologyKey === key);
      assert.ok(constraint, `no topology spread over ${key}`);
      assert.ok(matches(constraint.labelSelector?.matchLabels, template.metadata?.labels), `${key} selects other pods`);
    }

    const hpa = find<IHorizontalPodAutoscaler & KubeObject>(objects, "HorizontalPodAutoscaler", GATEWAY);
    assert.equal(hpa.apiVersion, "autoscaling/v2");
    assert.deepEqual(hpa.spec?.scaleTargetRef, { apiVersion: "apps/v1", kind: "Deployment", name: GATEWAY });
    const min = hpa.spec?.minReplicas ?? 1;
    assert.ok(min >= 1 && min <= (hpa.spec?.maxReplicas ?? 0));
    const cpu = hpa.spec?.metrics?.find((m) => m.type === "Resource" && m.resource?.name === "cpu");
    const target = cpu?.resource?.target.averageUtilization ?? 0;
    assert.ok(target >= 40 && target <= 80, `CPU target ${target}% leaves no headroom or wastes pods`);

    const pdb = find<IPodDisruptionBudget>(objects, "PodDisruptionBudget", GATEWAY);
    assert.ok(matches(pdb.spec?.selector?.matchLabels, template.metadata?.labels));
    assert.ok(pdb.spec?.maxUnavailable !== undefined || pdb.spec?.minAvailable !== undefined);
  });

  test(`${overlay}: the Service's public port leads to the gateway's public port only, the metrics port to 9090`, () => {
    const objects = objectsOf(overlay);
    const { template, container } = gatewayParts(objects);
    const service = find<IService>(objects, "Service", GATEWAY);
    assert.ok(matches(service.spec?.selector, template.metadata?.labels));
    const target = (name: string) => {
      const port = service.spec?.ports?.find((p) => p.name === name);
      assert.ok(port, `the Service has no port ${name}`);
      const c = container.ports?.find((p) => p.name === port.targetPort || p.containerPort === port.targetPort);
      assert.ok(c, `Service port ${name} leads to no container port`);
      return c.name;
    };
    assert.equal(target("http"), "http");
    assert.equal(target("metrics"), "metrics");
    assert.equal(service.spec?.ports?.length, 2);
  });

  test(`${overlay}: the public entry reaches only the Service's public port, WebSocket-friendly`, () => {
    const objects = objectsOf(overlay);
    const service = find<IService>(objects, "Service", GATEWAY);
    const publicPort = service.spec?.ports?.find((p) => p.name === "http");
    assert.ok(publicPort);
    const entries = objects.filter((o) => o.kind === "Ingress" || o.kind === "HTTPRoute");
    assert.equal(entries.length, 1, "exactly one public entry (an Ingress or an HTTPRoute)");
    const entry = entries[0] as KubeObject;
    if (entry.kind === "HTTPRoute") {
      const route = entry as unknown as HttpRoute;
      assert.ok(route.spec.parentRefs.length > 0 && route.spec.parentRefs.every((p) => p.name && p.namespace));
      const refs = route.spec.rules.flatMap((r) => r.backendRefs ?? []);
      assert.ok(refs.length > 0);
      for (const ref of refs) {
        assert.equal(ref.kind ?? "Service", "Service");
        assert.equal(ref.name, GATEWAY);
        assert.equal(ref.port, publicPort.port, "a route to a port other than the public one");
      }
      // Standard channel only; stickiness is the documented variant.
      for (const rule of route.spec.rules)
        assert.equal((rule as Record<string, unknown>).sessionPersistence, undefined);
      const socketIo = route.spec.rules.find((r) => r.matches?.some((m) => m.path?.value === "/socket.io/"));
      assert.ok(socketIo, "no rule for /socket.io/");
      const timeout = socketIo.timeouts?.request;
      assert.ok(timeout === "0s" || /h$/.test(timeout ?? ""), `request timeout ${timeout} would cut WebSockets`);
    } else {
      const ingress = entry as IIngress;
      assert.equal(ingress.spec?.ingressClassName, "nginx");
      const a = ingress.metadata?.annotations ?? {};
      const nginx = (key: string) => a[`nginx.ingress.kubernetes.io/${key}`];
      assert.equal(nginx("affinity"), "cookie", "long-polling needs cookie stickiness");
      assert.equal(nginx("affinity-mode"), "persistent");
      assert.ok(nginx("session-cookie-name"));
      for (const key of ["proxy-read-timeout", "proxy-send-timeout"]) {
        assert.ok(Number(nginx(key)) >= 300, `${key} would cut idle WebSockets`);
      }
      const backends = (ingress.spec?.rules ?? []).flatMap((r) => r.http?.paths ?? []).map((p) => p.backend.service);
      assert.ok(backends.length > 0);
      for (const backend of backends) {
        assert.equal(backend?.name, GATEWAY);
        assert.ok(backend?.port?.name === "http" || backend?.port?.number === publicPort.port);
      }
    }
  });

  test(`${overlay}: NetworkPolicies admit the public entry to 3000 and monitoring to 9090, nothing else; egress DNS, 5432, 6379, 443`, () => {
    const objects = objectsOf(overlay);
    const { template, container } = gatewayParts(objects);
    const policies = objects.filter(
      (o) =>
        o.kind === "NetworkPolicy" &&
        matches((o as INetworkPolicy).spec?.podSelector?.matchLabels, template.metadata?.labels),
    ) as INetworkPolicy[];
    const policy = find<INetworkPolicy>(objects, "NetworkPolicy", GATEWAY);
    assert.deepEqual([...(policy.spec?.policyTypes ?? [])].sort(), ["Egress", "Ingress"]);
    const portOf = (name: string) => container.ports?.find((p) => p.name === name)?.containerPort;

    // Every admitted (namespace, port) pair, over all policies that select the gateway's pods.
    const admitted = policies.flatMap((p) =>
      (p.spec?.ingress ?? []).flatMap((rule) => {
        assert.ok(rule.from && rule.from.length > 0, `${p.metadata?.name}: an ingress rule without from admits all`);
        assert.ok(rule.ports && rule.ports.length > 0, `${p.metadata?.name}: an ingress rule without ports`);
        return rule.from.flatMap((peer) => {
          assert.equal(peer.podSelector, undefined);
          assert.equal(peer.ipBlock, undefined);
          const ns = peer.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"];
          assert.ok(ns, "a peer that is not one named namespace");
          return (rule.ports ?? []).map((port) => `${ns}:${port.port}`);
        });
      }),
    );
    const entry = objects.find((o) => o.kind === "HTTPRoute") ? "gateway-system" : "ingress-nginx";
    assert.deepEqual(admitted.sort(), [`${entry}:${portOf("http")}`, `monitoring:${portOf("metrics")}`].sort());

    const allowed = new Set(["UDP/53", "TCP/53", "TCP/5432", "TCP/6379", "TCP/443"]);
    const egress = policies.flatMap((p) =>
      (p.spec?.egress ?? []).flatMap((rule) => {
        assert.ok(rule.ports && rule.ports.length > 0, "an egress rule without ports allows every port");
        return rule.ports.map((port) => `${port.protocol ?? "TCP"}/${port.port}`);
      }),
    );
    assert.deepEqual(new Set(egress), allowed);

    const migrate = find<INetworkPolicy>(objects, "NetworkPolicy", `${GATEWAY}-migrate`);
    assert.deepEqual(migrate.spec?.ingress, []);
    const migrateEgress = (migrate.spec?.egress ?? []).flatMap((r) =>
      (r.ports ?? []).map((p) => `${p.protocol}/${p.port}`),
    );
    assert.deepEqual(new Set(migrateEgress), new Set(["UDP/53", "TCP/53", "TCP/5432"]));
  });

  test(`${overlay}: Argo CD runs the migration Job as a re-created hook after what it needs and before the gateway`, () => {
    const objects = objectsOf(overlay);
    const job = find<IJob & KubeObject>(objects, "Job", `${GATEWAY}-migrate`);
    const a = job.metadata?.annotations ?? {};
    assert.equal(a["argocd.argoproj.io/hook"], "Sync");
    assert.equal(
      a["argocd.argoproj.io/hook-delete-policy"],
      "BeforeHookCreation",
      "an old Job would block the new one",
    );
    const wave = (o: KubeObject) => Number(o.metadata?.annotations?.["argocd.argoproj.io/sync-wave"] ?? 0);
    const jobWave = wave(job);
    const pod = job.spec?.template.spec;
    assert.ok(pod);
    // What the Job's pod needs must be applied in an earlier wave, the namespace earlier still.
    const needed = objects.filter(
      (o) =>
        (o.kind === "ServiceAccount" && o.metadata?.name === pod.serviceAccountName) ||
        (o.kind === "ConfigMap" &&
          envFromNames(pod.containers[0] ?? { name: "" }, "configMapRef").includes(o.metadata?.name ?? "")) ||
        (o.kind === "Secret" &&
          envFromNames(pod.containers[0] ?? { name: "" }, "secretRef").includes(o.metadata?.name ?? "")) ||
        (o.kind === "NetworkPolicy" && o.metadata?.name === `${GATEWAY}-migrate`) ||
        ["postgres", "redis"].includes(o.metadata?.labels?.["app.kubernetes.io/name"] ?? ""),
    );
    assert.ok(needed.length >= 3);
    for (const o of needed) assert.ok(wave(o) < jobWave, `${describeObject(o)} is applied after the Job`);
    const namespace = objects.find((o) => o.kind === "Namespace");
    assert.ok(namespace && needed.every((o) => wave(namespace) < wave(o)), "the namespace comes first");
    // And the gateway only once the Job has completed.
    for (const o of objects.filter((o) => o.metadata?.labels?.["app.kubernetes.io/component"] === "gateway")) {
      assert.ok(wave(o) > jobWave, `${describeObject(o)} is applied before the Job completes`);
    }
  });
  test(`${overlay}: the release's first phase (component!=gateway) holds what the migration Job needs, no gateway`, () => {
    // docs/deploy.md applies `-l app.kubernetes.io/component!=gateway` first and waits for the Job; a selector also
    // matches objects without the label, as kubectl does.
    const phase = objectsOf(overlay).filter((o) => o.metadata?.labels?.["app.kubernetes.io/component"] !== "gateway");
    const job = phase.find((o) => o.kind === "Job");
    assert.ok(job, "the migration Job is not in the first phase");
    const pod = (job as IJob).spec?.template.spec;
    assert.ok(pod);
    const has = (kind: string, name: string | undefined) =>
      phase.some((o) => o.kind === kind && o.metadata?.name === name);
    assert.ok(has("ServiceAccount", pod.serviceAccountName), "the Job's ServiceAccount comes later");
    for (const name of envFromNames(pod.containers[0] ?? { name: "" }, "configMapRef")) {
      assert.ok(has("ConfigMap", name), `ConfigMap ${name} comes later`);
    }
    assert.ok(has("NetworkPolicy", `${GATEWAY}-migrate`));
    assert.ok(
      !phase.some((o) => ["Deployment", "HorizontalPodAutoscaler"].includes(o.kind) && o.metadata?.name === GATEWAY),
    );
  });

  test(`${overlay}: everything lands in the overlay's namespace, which enforces the restricted Pod Security level`, () => {
    const objects = objectsOf(overlay);
    const namespaces = objects.filter((o) => o.kind === "Namespace");
    assert.equal(namespaces.length, 1);
    const ns = namespaces[0];
    assert.equal(ns?.metadata?.labels?.["pod-security.kubernetes.io/enforce"], "restricted");
    for (const o of objects) {
      if (o.kind !== "Namespace") assert.equal(o.metadata?.namespace, ns?.metadata?.name, describeObject(o));
    }
  });
}

// --- Overlay differences -----------------------------------------------------------------------------------------

const PRODUCTION = ["k8s/overlays/prod", "k8s/overlays/prod-ingress-nginx", "k8s/overlays/prod-cnpg"];

for (const overlay of PRODUCTION) {
  test(`${overlay}: more replicas than dev, Guaranteed one-core pods, the HPA fires before the event loop saturates`, () => {
    const prod = objectsOf(overlay);
    const dev = objectsOf("k8s/overlays/dev");
    const hpa = (objects: KubeObject[]) => find<IHorizontalPodAutoscaler>(objects, "HorizontalPodAutoscaler", GATEWAY);
    assert.ok((hpa(prod).spec?.minReplicas ?? 0) >= 3 * (hpa(dev).spec?.minReplicas ?? 1));
    assert.ok((hpa(prod).spec?.maxReplicas ?? 0) > (hpa(dev).spec?.maxReplicas ?? 0));

    const { container, config } = gatewayParts(prod);
    const { requests, limits } = container.resources ?? {};
    // One Node process runs its JavaScript on one thread: about one core, no more.
    assert.equal(quantity(requests?.cpu), 1, "one single-threaded Node process per pod: request one core");
    assert.equal(quantity(limits?.cpu), quantity(requests?.cpu), "Guaranteed: CPU request = limit");
    assert.equal(quantity(requests?.memory), quantity(limits?.memory), "Guaranteed: memory request = limit");
    assert.ok(quantity(requests?.memory) > quantity(gatewayParts(dev).container.resources?.requests?.memory));
    // The HPA acts at target x 1.1 (its tolerance) of one core: that must leave the event loop real headroom.
    const target = hpa(prod).spec?.metrics?.find((m) => m.resource?.name === "cpu")?.resource?.target
      .averageUtilization;
    assert.ok(target !== undefined && (target / 100) * 1.1 * quantity(requests?.cpu) <= 0.75, `target ${target}%`);
    // Pool x pods stays within what the database was sized for (24 x 10 before the pods were halved).
    assert.ok(Number(config.DATABASE_POOL_SIZE) * (hpa(prod).spec?.maxReplicas ?? 0) <= 240);
    // No in-cluster datastores in prod.
    assert.ok(!prod.some((o) => o.kind === "StatefulSet" || ["postgres", "redis"].includes(o.metadata?.name ?? "")));
  });

  test(`${overlay}: hard zone spread that still places every pod on one-, two- and three-zone clusters`, () => {
    const { pod } = gatewayParts(objectsOf(overlay));
    const zone = pod.topologySpreadConstraints?.find((c) => c.topologyKey === "topology.kubernetes.io/zone");
    assert.ok(zone);
    assert.equal(zone.whenUnsatisfiable, "DoNotSchedule", "prod spreads hard over zones");
    assert.equal(zone.nodeTaintsPolicy, "Honor", "a failed zone's tainted nodes must stop counting as a domain");
    const max = find<IHorizontalPodAutoscaler>(objectsOf(overlay), "HorizontalPodAutoscaler", GATEWAY).spec
      ?.maxReplicas;
    for (const zones of [1, 2, 3]) {
      assert.equal(placedPods(zone, zones, max ?? 0), max, `${zones} zone(s): pods left Pending`);
    }
    // The check can fail: the earlier minDomains 3 strands pods on two zones.
    assert.equal(placedPods({ ...zone, minDomains: 3 }, 2, 12), 2);
  });

  test(`${overlay}: a ServiceMonitor scrapes the Service's metrics port`, () => {
    const objects = objectsOf(overlay);
    const monitor = find<ServiceMonitor & KubeObject>(objects, "ServiceMonitor", GATEWAY);
    const service = find<IService & KubeObject>(objects, "Service", GATEWAY);
    assert.ok(matches(monitor.spec.selector.matchLabels, service.metadata?.labels));
    assert.deepEqual(
      monitor.spec.endpoints.map((e) => [e.port, e.path]),
      [["metrics", "/metrics"]],
    );
    assert.ok(service.spec?.ports?.some((p) => p.name === "metrics"));
  });
}

/**
 * kube-scheduler's PodTopologySpread filter for one constraint, one pod after another onto zones with room: a pod may
 * go to a zone if that zone's count + 1 - the global minimum <= maxSkew, where the global minimum is 0 while fewer
 * zones exist than minDomains. Answers how many of `pods` get placed.
 */
function placedPods(
  constraint: { maxSkew: number; minDomains?: number; whenUnsatisfiable: string },
  zones: number,
  pods: number,
): number {
  const counts = new Array<number>(zones).fill(0);
  for (let placed = 0; placed < pods; placed++) {
    const globalMin = zones < (constraint.minDomains ?? 1) ? 0 : Math.min(...counts);
    const candidates = counts.map((c, i) => [c, i] as const).filter(([c]) => c + 1 - globalMin <= constraint.maxSkew);
    if (candidates.length === 0 && constraint.whenUnsatisfiable === "DoNotSchedule") return placed;
    const [, zone] = (candidates.length > 0 ? candidates : counts.map((c, i) => [c, i] as const)).sort(
      (a, b) => a[0] - b[0],
    )[0] as readonly [number, number];
    counts[zone] = (counts[zone] ?? 0) + 1;
  }
  return pods;
}

test("prod: routes through a Gateway API HTTPRoute (no Ingress); the legacy overlay keeps the sticky Ingress", () => {
  const prod = objectsOf("k8s/overlays/prod");
  assert.ok(!prod.some((o) => o.kind === "Ingress"));
  find<HttpRoute>(prod, "HTTPRoute", GATEWAY);
  const legacy = objectsOf("k8s/overlays/prod-ingress-nginx");
  assert.ok(!legacy.some((o) => o.kind === "HTTPRoute"));
  const ingress = find<IIngress>(legacy, "Ingress", GATEWAY);
  assert.equal(ingress.metadata?.annotations?.["nginx.ingress.kubernetes.io/affinity"], "cookie");
  assert.equal(ingress.metadata?.annotations?.["nginx.ingress.kubernetes.io/session-cookie-secure"], "true");
  // Same production settings on both entries.
  const strip = (objects: KubeObject[]) =>
    objects
      .filter((o) => !["Ingress", "HTTPRoute"].includes(o.kind) && o.metadata?.name !== `${GATEWAY}-public`)
      .map((o) => JSON.stringify(o))
      .sort();
  assert.deepEqual(strip(legacy), strip(prod));
});

test("prod-cnpg: prod plus a CloudNativePG Cluster with replicas for chat-pg-ro, one per zone, before the Job", () => {
  const cnpg = objectsOf("k8s/overlays/prod-cnpg");
  const cluster = structuredClone(find<KubeObject & { spec: Record<string, unknown> }>(cnpg, "Cluster", "chat-pg"));
  assert.equal(cluster.apiVersion, "postgresql.cnpg.io/v1");
  assert.deepEqual(validator.validate(cluster), []);
  const spec = cluster.spec as {
    instances: number;
    affinity: Record<string, unknown>;
    postgresql: { parameters: Record<string, string> };
  };
  assert.ok(spec.instances >= 2, "no replica behind chat-pg-ro (DATABASE_READ_URL)");
  assert.equal(spec.affinity.topologyKey, "topology.kubernetes.io/zone");
  assert.equal(spec.affinity.podAntiAffinityType, "required");
  // 48 pods with a pool of 5 and the writers' 3 on the primary, the Job, the operator: within max_connections.
  assert.ok(Number(spec.postgresql.parameters.max_connections) >= 48 * (5 + 3) + 10);
  // Everything else is prod's.
  const strip = (objects: KubeObject[]) =>
    objects
      .filter((o) => o.kind !== "Cluster")
      .map((o) => JSON.stringify(o))
      .sort();
  assert.deepEqual(strip(cnpg), strip(objectsOf("k8s/overlays/prod")));
  // The shape check refuses what the CRD refuses.
  spec.instances = 0;
  (spec as Record<string, unknown>).replicas = 3;
  (spec as Record<string, unknown>).maxSyncReplicas = 1;
  assert.deepEqual(validator.validate(cluster).sort(), [
    ".spec.instances: 0 is out of range",
    ".spec.maxSyncReplicas: must be lower than instances",
    ".spec.replicas: unknown field",
  ]);
});

test("dev: no ServiceMonitor (dev clusters rarely have the Prometheus Operator's CRDs)", () => {
  assert.ok(!objectsOf("k8s/overlays/dev").some((o) => o.kind === "ServiceMonitor"));
});

test("dev: in-cluster PostgreSQL and Redis behind Services that the dev Secret's URLs point at", () => {
  const dev = objectsOf("k8s/overlays/dev");
  const secretName = envFromNames(gatewayParts(dev).container, "secretRef")[0] ?? "";
  const secret = referenced<ISecret>(dev, "Secret", secretName);
  assert.ok(secret?.data, "dev generates chat-gateway-secrets");
  const value = (key: string) => Buffer.from(secret.data?.[key] ?? "", "base64").toString("utf8");
  const database = new URL(value("DATABASE_URL"));
  const redis = new URL(value("REDIS_URL"));
  assert.ok(value("JWT_SECRET").length >= 32 && value("JWT_SECRET").startsWith("dev-only-"));

  for (const [url, name, port] of [
    [database, "postgres", 5432],
    [redis, "redis", 6379],
  ] as const) {
    assert.equal(url.hostname, name);
    const service = find<IService>(dev, "Service", name);
    assert.equal(service.spec?.ports?.[0]?.port, port);
    const backing = workloads(dev).find((w) => matches(service.spec?.selector, w.template.metadata?.labels));
    assert.ok(backing, `no pods behind Service ${name}`);
  }
  // Plain HTTP in dev: a Secure affinity cookie would never be stored.
  const ingress = find<IIngress>(dev, "Ingress", GATEWAY);
  assert.equal(ingress.spec?.tls, undefined);
  assert.equal(ingress.metadata?.annotations?.["nginx.ingress.kubernetes.io/session-cookie-secure"], "false");
});
