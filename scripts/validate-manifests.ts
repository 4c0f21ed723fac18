// Renders the kustomize overlays offline and validates every object against the Kubernetes API schema, rejecting
// unknown fields the way `kubectl apply --validate=strict` would against a live API server.
//
//   node --import tsx scripts/validate-manifests.ts [k8s/overlays/dev k8s/overlays/prod ...]
//
// Two passes per object, both from the kubernetes-models package (generated from the Kubernetes OpenAPI spec):
//  1. the package's own validator (ajv, compiled from the schema): required fields, types, formats, enums. It
//     accepts any extra property, because the upstream schemas say nothing about additionalProperties.
//  2. a closed-world walk over the same schema as the package's TypeScript declarations, read with the TypeScript
//     compiler: every key of every nested object must be a declared property of the model at that position (or the
//     model must be a string map, like labels). A typo such as `readinessProbe.httpGett` or `spec.replica` fails here.
// Both work from node_modules alone: no cluster, no network, no schema download.
// Custom resources (Gateway API HTTPRoute, Prometheus Operator ServiceMonitor) have no kubernetes-models schema: they
// are checked against the closed-world shapes of scripts/crd-shapes.ts instead. Any other kind is refused.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import type * as TypeScript from "typescript";
import { parseAllDocuments } from "yaml";
import { checkShape, crdShapes, type Shape } from "./crd-shapes.js";

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata?: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

const execFileAsync = promisify(execFile);
// Through require, not `import`: importing the 9 MB CommonJS compiler from an ES module makes Node scan it for named
// exports first, which costs more than the whole validation.
const requireModule = createRequire(import.meta.url);
const ts = requireModule("typescript") as typeof TypeScript;

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const overlays = [
  "k8s/overlays/dev",
  "k8s/overlays/prod",
  "k8s/overlays/prod-ingress-nginx",
  "k8s/overlays/prod-cnpg",
];

/** `kubectl kustomize` renders offline (it never contacts a cluster). Async so that overlays render in parallel. */
export async function render(dir: string): Promise<KubeObject[]> {
  try {
    const { stdout } = await execFileAsync("kubectl", ["kustomize", resolve(repoRoot, dir)], {
      encoding: "utf8",
      maxBuffer: 16 * 1024 * 1024,
    });
    return parseManifests(stdout, dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT")
      throw new Error("kubectl is not on PATH (it renders kustomize)", { cause: error });
    throw error;
  }
}

export function parseManifests(text: string, source = "<text>"): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors.map((e) => e.message).join("; ")}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (!isKubeObject(value)) throw new Error(`${source}: a document without apiVersion and kind`);
    objects.push(value);
  }
  return objects;
}

function isKubeObject(value: unknown): value is KubeObject {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const v = value as Record<string, unknown>;
  return typeof v.apiVersion === "string" && typeof v.kind === "string";
}

export function describe(obj: KubeObject): string {
  return `${obj.kind}/${obj.metadata?.name ?? "<unnamed>"}`;
}

/** kubernetes-models lays its modules out as <group>/<version>/<Kind>, the core group as v1/<Kind>. */
function modelModule(apiVersion: string, kind: string): string | undefined {
  // Also keeps anything odd out of the module specifier that is then required.
  if (!/^([a-z0-9.-]+\/)?v[0-9]+((alpha|beta)[0-9]+)?$/.test(apiVersion) || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) {
    return undefined;
  }
  return `kubernetes-models/${apiVersion}/${kind}`;
}

const kindKey = (apiVersion: string, kind: string) => `${apiVersion} ${kind}`;

interface ModelClass {
  new (data: unknown): { validate(): void };
}

export interface Validator {
  /** Every problem found in the object, as "path: message"; empty when the object is valid. */
  validate(obj: KubeObject): string[];
  /** The first pass alone (kubernetes-models' own validator), which lets unknown fields through. */
  modelErrors(obj: KubeObject): string[];
}

/**
 * Builds a validator for the given kinds (apiVersion and kind pairs). Loading the models and type-checking their
 * declarations is the slow part (about a second), so callers build one validator for everything they will check.
 */
export function createValidator(kinds: Iterable<{ apiVersion: string; kind: string }>): Validator {
  const wanted = new Map<string, { apiVersion: string; kind: string; module: string }>();
  const classes = new Map<string, ModelClass>();
  const unknownKinds = new Map<string, string>();
  for (const { apiVersion, kind } of kinds) {
    if (crdShapes.has(kindKey(apiVersion, kind))) continue;
    const module = modelModule(apiVersion, kind);
    if (module === undefined)
      unknownKinds.set(kindKey(apiVersion, kind), `not a Kubernetes type: ${apiVersion} ${kind}`);
    else wanted.set(kindKey(apiVersion, kind), { apiVersion, kind, module });
  }

  for (const [key, w] of wanted) {
    try {
      // require, like the compiler above: the CommonJS build loads in half the time of the ES module one.
      const mod = requireModule(w.module) as Record<string, ModelClass | undefined>;
      const cls = mod[w.kind];
      if (cls === undefined) throw new Error(`${w.module} exports no ${w.kind}`);
      classes.set(key, cls);
    } catch (error) {
      unknownKinds.set(key, `no schema for ${w.apiVersion} ${w.kind} (${(error as Error).message.split("\n")[0]})`);
    }
  }

  const types = declaredTypes([...wanted].filter(([key]) => classes.has(key)));

  type Found =
    | { problem: string }
    | { problem?: undefined; shape: Shape }
    | { problem?: undefined; cls: ModelClass; type: TypeScript.Type };
  const lookup = (obj: KubeObject): Found => {
    const key = kindKey(obj.apiVersion, obj.kind);
    const shape = crdShapes.get(key);
    if (shape !== undefined) return { shape };
    const missing = unknownKinds.get(key);
    if (missing !== undefined) return { problem: missing };
    const cls = classes.get(key);
    const type = types.types.get(key);
    if (cls === undefined || type === undefined) {
      return { problem: `validator was not built for ${obj.apiVersion} ${obj.kind}` };
    }
    return { cls, type };
  };
  const modelErrors = (obj: KubeObject, cls: ModelClass): string[] => {
    try {
      new cls(forSchema(obj)).validate();
      return [];
    } catch (error) {
      return schemaErrors(error);
    }
  };

  return {
    validate(obj) {
      const found = lookup(obj);
      if (found.problem !== undefined) return [found.problem];
      if ("shape" in found) return checkShape(obj, found.shape);
      const problems = modelErrors(obj, found.cls);
      walk(types.checker, obj, found.type, "", problems);
      return problems;
    },
    modelErrors(obj) {
      const found = lookup(obj);
      if (found.problem !== undefined) return [found.problem];
      return "shape" in found ? checkShape(obj, found.shape) : modelErrors(obj, found.cls);
    },
  };
}

/**
 * kustomize folds long base64 values in Secret `data` over several lines. The API server decodes them with Go's
 * base64, which skips newlines, so they are valid; the schema's `byte` format regex is stricter than the server.
 */
function forSchema(obj: KubeObject): KubeObject {
  if (obj.apiVersion !== "v1" || obj.kind !== "Secret" || typeof obj.data !== "object" || obj.data === null) return obj;
  const data = Object.fromEntries(
    Object.entries(obj.data as Record<string, unknown>).map(([k, v]) => [
      k,
      typeof v === "string" ? v.replace(/[\r\n]/g, "") : v,
    ]),
  );
  return { ...obj, data };
}

/** ajv's error list as "path: message" lines (kubernetes-models throws a ValidationError carrying `errors`). */
function schemaErrors(error: unknown): string[] {
  const errors = (error as { errors?: Array<{ instancePath?: string; message?: string }> }).errors;
  if (!Array.isArray(errors) || errors.length === 0) return [String((error as Error).message ?? error)];
  return errors.map((e) => `${jsonPointerToPath(e.instancePath ?? "")}: ${e.message ?? "invalid"}`);
}

/** "/spec/containers/0/name" as ".spec.containers[0].name", the form the closed-world walk reports. */
function jsonPointerToPath(pointer: string): string {
  if (pointer === "") return ".";
  return pointer
    .split("/")
    .slice(1)
    .map((part) => part.replaceAll("~1", "/").replaceAll("~0", "~"))
    .map((part) => (/^[0-9]+$/.test(part) ? `[${part}]` : `.${part}`))
    .join("");
}

/**
 * The model interfaces (IDeployment, IService, ...) as TypeScript types. One in-memory module imports them, and a
 * program over it resolves the package's .d.ts files through node_modules exactly as an editor would.
 */
function declaredTypes(entries: Array<[string, { kind: string; module: string }]>): {
  checker: TypeScript.TypeChecker;
  types: Map<string, TypeScript.Type>;
} {
  // Beside the real sources so that module resolution starts from this repository's node_modules.
  const entryFile = join(repoRoot, "scripts", "__k8s_model_types__.ts").replaceAll("\\", "/");
  const source =
    entries
      .map(
        ([, e], i) =>
          `import type { I${e.kind} as T${i} } from ${JSON.stringify(e.module)};\nexport type K${i} = T${i};`,
      )
      .join("\n") + "\nexport {};\n";
  const options: TypeScript.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    // The declarations only need Array and the primitives.
    lib: ["lib.es5.d.ts"],
  };
  const host = ts.createCompilerHost(options);
  // The models' doc comments are most of their text and say nothing the walk needs.
  host.jsDocParsingMode = ts.JSDocParsingMode.ParseNone;
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const readFile = host.readFile.bind(host);
  host.getSourceFile = (fileName, languageVersion, ...rest) =>
    fileName === entryFile
      ? ts.createSourceFile(fileName, source, languageVersion)
      : getSourceFile(fileName, languageVersion, ...rest);
  host.fileExists = (fileName) => fileName === entryFile || fileExists(fileName);
  host.readFile = (fileName) => (fileName === entryFile ? source : readFile(fileName));

  const program = ts.createProgram([entryFile], options, host);
  const checker = program.getTypeChecker();
  const file = program.getSourceFile(entryFile);
  if (file === undefined) throw new Error("the in-memory model module did not load");
  // An import that does not resolve would silently become `any` and accept everything: refuse instead.
  const diagnostics = ts.getPreEmitDiagnostics(program, file);
  if (diagnostics.length > 0) {
    throw new Error(ts.formatDiagnostics(diagnostics, { ...host, getNewLine: () => "\n" }));
  }
  const types = new Map<string, TypeScript.Type>();
  for (const statement of file.statements) {
    if (!ts.isTypeAliasDeclaration(statement)) continue;
    const index = Number(statement.name.text.slice(1));
    const entry = entries[index];
    if (entry !== undefined) types.set(entry[0], checker.getTypeFromTypeNode(statement.type));
  }
  return { checker, types };
}

const NULLISH = ts.TypeFlags.Undefined | ts.TypeFlags.Null | ts.TypeFlags.Void;
const ANYTHING = ts.TypeFlags.Any | ts.TypeFlags.Unknown;

/** Checks `value` against `type`: unknown keys anywhere, and values of the wrong kind (including enum literals). */
function walk(
  checker: TypeScript.TypeChecker,
  value: unknown,
  type: TypeScript.Type,
  path: string,
  problems: string[],
): void {
  // Kubernetes treats null as "unset"; the ajv pass reports a null where one is not allowed.
  if (value === null || value === undefined) return;
  const members = (type.isUnion() ? type.types : [type]).filter((t) => (t.flags & NULLISH) === 0);
  if (members.some((t) => (t.flags & ANYTHING) !== 0)) return;
  const where = path === "" ? "." : path;

  if (Array.isArray(value)) {
    const array = members.find((t) => checker.isArrayType(t)) as TypeScript.TypeReference | undefined;
    if (array === undefined) {
      problems.push(`${where}: a list where the schema has ${show(checker, members)}`);
      return;
    }
    const element = checker.getTypeArguments(array)[0];
    if (element !== undefined) value.forEach((item, i) => walk(checker, item, element, `${path}[${i}]`, problems));
    return;
  }

  if (typeof value === "object") {
    const objects = members.filter(
      (t) => (t.flags & (ts.TypeFlags.Object | ts.TypeFlags.Intersection)) !== 0 && !checker.isArrayType(t),
    );
    if (objects.length === 0) {
      problems.push(`${where}: an object where the schema has ${show(checker, members)}`);
      return;
    }
    for (const [key, child] of Object.entries(value)) {
      const childType = fieldType(checker, objects, key);
      if (childType === undefined) {
        problems.push(
          `${path}.${key}: unknown field (not in ${objects.map((o) => checker.typeToString(o)).join(" | ")})`,
        );
      } else {
        walk(checker, child, childType, `${path}.${key}`, problems);
      }
    }
    return;
  }

  if (!members.some((t) => acceptsPrimitive(t, value))) {
    problems.push(`${where}: ${JSON.stringify(value)} is not ${show(checker, members)}`);
  }
}

function show(checker: TypeScript.TypeChecker, types: readonly TypeScript.Type[]): string {
  return types.map((t) => checker.typeToString(t)).join(" | ");
}

function fieldType(
  checker: TypeScript.TypeChecker,
  objects: readonly TypeScript.Type[],
  key: string,
): TypeScript.Type | undefined {
  for (const object of objects) {
    const property = checker.getPropertyOfType(object, key);
    if (property !== undefined) return checker.getTypeOfSymbol(property);
  }
  for (const object of objects) {
    const index = checker.getIndexInfosOfType(object).find((info) => (info.keyType.flags & ts.TypeFlags.String) !== 0);
    if (index !== undefined) return index.type;
  }
  return undefined;
}

function acceptsPrimitive(type: TypeScript.Type, value: unknown): boolean {
  switch (typeof value) {
    case "string":
      return (type.flags & ts.TypeFlags.String) !== 0 || (type.isStringLiteral() && type.value === value);
    case "number":
      return (type.flags & ts.TypeFlags.Number) !== 0 || (type.isNumberLiteral() && type.value === value);
    case "boolean":
      return (type.flags & (ts.TypeFlags.Boolean | ts.TypeFlags.BooleanLiteral)) !== 0;
    default:
      return false;
  }
}

/** Renders each overlay and validates everything in it; returns the problems keyed by "overlay Kind/name". */
export async function validateOverlays(dirs: readonly string[] = overlays): Promise<Map<string, string[]>> {
  const rendered = await Promise.all(dirs.map(async (dir) => ({ dir, objects: await render(dir) })));
  const validator = createValidator(rendered.flatMap((r) => r.objects));
  const problems = new Map<string, string[]>();
  for (const { dir, objects } of rendered) {
    for (const obj of objects) {
      const found = validator.validate(obj);
      if (found.length > 0) problems.set(`${dir} ${describe(obj)}`, found);
    }
  }
  return problems;
}

export function readManifestFile(path: string): KubeObject[] {
  return parseManifests(readFileSync(resolve(repoRoot, path), "utf8"), path);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const dirs = process.argv.slice(2);
  const problems = await validateOverlays(dirs.length > 0 ? dirs : overlays);
  for (const [object, found] of problems) {
    console.error(`${object}:`);
    for (const p of found) console.error(`  ${p}`);
  }
  console.log(problems.size === 0 ? "manifests valid" : `${problems.size} invalid object(s)`);
  process.exit(problems.size === 0 ? 0 : 1);
}
