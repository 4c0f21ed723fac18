// Closed-world shapes for the custom resources the overlays use, whose schemas kubernetes-models does not carry:
// Gateway API HTTPRoute (gateway.networking.k8s.io/v1, standard channel) and Prometheus Operator ServiceMonitor
// (monitoring.coreos.com/v1), and CloudNativePG Cluster (postgresql.cnpg.io/v1). Each shape lists the fields of the upstream CRD that these manifests use or may soon
// use, with their types, enums, patterns and required fields from the CRD's OpenAPI schema; anything else is an
// unknown field, as `kubectl apply --validate=strict` would say against a cluster with the CRD. Not the whole CRD:
// a field added to the manifests must be added here too, on purpose.
// HTTPRoute's `sessionPersistence` is deliberately absent: it exists only in the experimental channel's CRD, and a
// standard-channel cluster refuses it.

export type Shape =
  | { type: "string"; pattern?: RegExp; enum?: readonly string[] }
  | { type: "integer"; min?: number; max?: number }
  | { type: "boolean" }
  | { type: "stringMap" }
  | { type: "list"; of: Shape; max?: number }
  | {
      type: "object";
      fields: Record<string, Shape>;
      required?: readonly string[];
      /** Rules across fields (the CRDs' CEL rules): a problem, or undefined. */
      rules?: ReadonlyArray<(value: Record<string, unknown>) => string | undefined>;
    };

const string = (pattern?: RegExp): Shape => (pattern ? { type: "string", pattern } : { type: "string" });
const oneOf = (...values: string[]): Shape => ({ type: "string", enum: values });
const integer = (min?: number, max?: number): Shape => ({
  type: "integer",
  ...(min === undefined ? {} : { min }),
  ...(max === undefined ? {} : { max }),
});
const list = (of: Shape, max?: number): Shape => ({ type: "list", of, ...(max === undefined ? {} : { max }) });
const object = (
  fields: Record<string, Shape>,
  required: readonly string[] = [],
  rules: ReadonlyArray<(value: Record<string, unknown>) => string | undefined> = [],
): Shape => ({ type: "object", fields, required, rules });

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Gateway API Duration (GEP-2257). */
const GATEWAY_DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;
/** Prometheus duration, as the ServiceMonitor CRD's pattern has it. */
const PROMETHEUS_DURATION =
  /^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$/;

const objectMeta = object(
  {
    name: string(DNS_SUBDOMAIN),
    namespace: string(DNS_LABEL),
    labels: { type: "stringMap" },
    annotations: { type: "stringMap" },
  },
  ["name"],
);

const labelSelector = object({
  matchLabels: { type: "stringMap" },
  matchExpressions: list(
    object({ key: string(), operator: oneOf("In", "NotIn", "Exists", "DoesNotExist"), values: list(string()) }, [
      "key",
      "operator",
    ]),
  ),
});

const parentRef = object(
  {
    group: string(),
    kind: string(),
    namespace: string(DNS_LABEL),
    name: string(),
    sectionName: string(DNS_SUBDOMAIN),
    port: integer(1, 65535),
  },
  ["name"],
);

const backendRef = object(
  {
    group: string(),
    kind: string(),
    name: string(),
    namespace: string(DNS_LABEL),
    port: integer(1, 65535),
    weight: integer(0, 1_000_000),
  },
  ["name"],
  // CEL in the CRD: "Must have port for Service reference".
  [
    (v) =>
      (v.group ?? "") === "" && (v.kind ?? "Service") === "Service" && v.port === undefined
        ? "port: required for a Service"
        : undefined,
  ],
);

const routeMatch = object({
  path: object(
    { type: oneOf("Exact", "PathPrefix", "RegularExpression"), value: string() },
    [],
    [
      (v) =>
        v.type !== "RegularExpression" && typeof v.value === "string" && !v.value.startsWith("/")
          ? "value: must be an absolute path"
          : undefined,
    ],
  ),
  headers: list(
    object({ type: oneOf("Exact", "RegularExpression"), name: string(), value: string() }, ["name", "value"]),
    16,
  ),
  queryParams: list(
    object({ type: oneOf("Exact", "RegularExpression"), name: string(), value: string() }, ["name", "value"]),
    16,
  ),
  method: oneOf("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"),
});

const durationSeconds = (text: unknown): number => {
  let total = 0;
  for (const [, n, unit] of String(text).matchAll(/([0-9]+)(ms|h|m|s)/g)) {
    total += Number(n) * ({ h: 3600, m: 60, s: 1, ms: 0.001 } as Record<string, number>)[unit as string]!;
  }
  return total;
};

const routeRule = object({
  name: string(DNS_LABEL),
  matches: list(routeMatch, 64),
  backendRefs: list(backendRef, 16),
  timeouts: object(
    { request: string(GATEWAY_DURATION), backendRequest: string(GATEWAY_DURATION) },
    [],
    [
      // CEL in the CRD: backendRequest may not exceed request, unless request is 0s (no timeout).
      (v) =>
        v.request !== undefined &&
        v.backendRequest !== undefined &&
        durationSeconds(v.request) !== 0 &&
        durationSeconds(v.backendRequest) > durationSeconds(v.request)
          ? "backendRequest: must not exceed request"
          : undefined,
    ],
  ),
});

const httpRoute = object(
  {
    apiVersion: string(),
    kind: string(),
    metadata: objectMeta,
    spec: object({
      parentRefs: list(parentRef, 32),
      hostnames: list(string(DNS_SUBDOMAIN), 16),
      rules: list(routeRule, 16),
    }),
  },
  ["metadata", "spec"],
);

const serviceMonitor = object(
  {
    apiVersion: string(),
    kind: string(),
    metadata: objectMeta,
    spec: object(
      {
        jobLabel: string(),
        selector: labelSelector,
        namespaceSelector: object({ any: { type: "boolean" }, matchNames: list(string(DNS_LABEL)) }),
        endpoints: list(
          object({
            port: string(),
            path: string(),
            scheme: oneOf("http", "https"),
            interval: string(PROMETHEUS_DURATION),
            scrapeTimeout: string(PROMETHEUS_DURATION),
            honorLabels: { type: "boolean" },
          }),
        ),
      },
      ["selector", "endpoints"],
    ),
  },
  ["metadata", "spec"],
);

/** Kubernetes resource quantity (the forms these manifests use). */
const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/;
const resources = object({
  requests: object({ cpu: string(QUANTITY), memory: string(QUANTITY) }),
  limits: object({ cpu: string(QUANTITY), memory: string(QUANTITY) }),
});

/** CloudNativePG Cluster (postgresql.cnpg.io/v1): the fields of its CRD that the cloudnative-pg component uses. */
const cnpgCluster = object(
  {
    apiVersion: string(),
    kind: string(),
    metadata: objectMeta,
    spec: object(
      {
        instances: integer(1),
        imageName: string(),
        primaryUpdateStrategy: oneOf("unsupervised", "supervised"),
        primaryUpdateMethod: oneOf("switchover", "restart"),
        minSyncReplicas: integer(0),
        maxSyncReplicas: integer(0),
        bootstrap: object({
          initdb: object({ database: string(), owner: string(), secret: object({ name: string() }, ["name"]) }),
        }),
        postgresql: object({ parameters: { type: "stringMap" } }),
        storage: object({ size: string(QUANTITY), storageClass: string() }),
        resources,
        affinity: object({
          enablePodAntiAffinity: { type: "boolean" },
          podAntiAffinityType: oneOf("preferred", "required"),
          topologyKey: string(),
        }),
        monitoring: object({ enablePodMonitor: { type: "boolean" } }),
      },
      ["instances"],
      // The CRD's own rule: maxSyncReplicas must stay below instances (a sync replica needs another instance).
      [
        (v) =>
          typeof v.maxSyncReplicas === "number" && typeof v.instances === "number" && v.maxSyncReplicas >= v.instances
            ? "maxSyncReplicas: must be lower than instances"
            : undefined,
      ],
    ),
  },
  ["metadata", "spec"],
);

/** The custom kinds with a shape, keyed as "apiVersion kind". */
export const crdShapes: ReadonlyMap<string, Shape> = new Map([
  ["gateway.networking.k8s.io/v1 HTTPRoute", httpRoute],
  ["monitoring.coreos.com/v1 ServiceMonitor", serviceMonitor],
  ["postgresql.cnpg.io/v1 Cluster", cnpgCluster],
]);

/** Every problem of `value` against `shape`, as "path: message" (the form the schema walk reports). */
export function checkShape(value: unknown, shape: Shape, path = "", problems: string[] = []): string[] {
  const where = path === "" ? "." : path;
  switch (shape.type) {
    case "string":
      if (typeof value !== "string") problems.push(`${where}: ${JSON.stringify(value)} is not a string`);
      else if (shape.enum && !shape.enum.includes(value))
        problems.push(`${where}: "${value}" is not one of ${shape.enum.join(", ")}`);
      else if (shape.pattern && !shape.pattern.test(value))
        problems.push(`${where}: "${value}" does not match ${shape.pattern}`);
      break;
    case "integer":
      if (typeof value !== "number" || !Number.isInteger(value))
        problems.push(`${where}: ${JSON.stringify(value)} is not an integer`);
      else if ((shape.min !== undefined && value < shape.min) || (shape.max !== undefined && value > shape.max)) {
        problems.push(`${where}: ${value} is out of range`);
      }
      break;
    case "boolean":
      if (typeof value !== "boolean") problems.push(`${where}: ${JSON.stringify(value)} is not a boolean`);
      break;
    case "stringMap":
      if (!isRecord(value)) problems.push(`${where}: not a map`);
      else
        for (const [k, v] of Object.entries(value))
          if (typeof v !== "string") problems.push(`${path}.${k}: not a string`);
      break;
    case "list":
      if (!Array.isArray(value)) problems.push(`${where}: not a list`);
      else {
        if (shape.max !== undefined && value.length > shape.max)
          problems.push(`${where}: more than ${shape.max} items`);
        value.forEach((item, i) => checkShape(item, shape.of, `${path}[${i}]`, problems));
      }
      break;
    case "object":
      if (!isRecord(value)) {
        problems.push(`${where}: not an object`);
        break;
      }
      for (const key of shape.required ?? []) if (value[key] === undefined) problems.push(`${path}.${key}: required`);
      for (const [key, child] of Object.entries(value)) {
        const field = shape.fields[key];
        if (field === undefined) problems.push(`${path}.${key}: unknown field`);
        else if (child !== null && child !== undefined) checkShape(child, field, `${path}.${key}`, problems);
      }
      for (const rule of shape.rules ?? []) {
        const problem = rule(value);
        if (problem !== undefined) problems.push(`${path}.${problem}`);
      }
      break;
  }
  return problems;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
