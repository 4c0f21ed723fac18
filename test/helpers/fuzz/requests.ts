// Turns a fuzz table entry into generated requests: HTTP requests (path, query, headers, body) and socket emits
// (payload, extra arguments, an ackless copy sent first).
import fc from "fast-check";
import { anyJson, bytes, deeplyNested, notObject } from "./arbitraries.js";
import { type Field, malformedObject, type Shape, validObject } from "./model.js";
import type { FuzzContext, HttpEntry, SocketEntry } from "./table.js";

export interface HttpCase {
  method: string;
  path: string;
  headers: Record<string, string>;
  /** A JSON value to send, or raw text with its content type. */
  body?: { json: unknown } | { raw: string; contentType?: string };
  /** What was broken, for the failure report. */
  broken: string[];
}

const printable = (max: number) => fc.string({ maxLength: max }).filter((s) => /^[\x20-\x7e]*$/.test(s));

/** Bodies no JSON schema gets to see: bad JSON, another content type, too large, nested past any sense. */
function rawBodies(bodyLimit: number): fc.Arbitrary<{ raw: string; contentType?: string }> {
  const json = (raw: string) => ({ raw, contentType: "application/json" });
  return fc.oneof(
    // A byte order mark before valid JSON may be ignored (RFC 8259, 8.1), so only before invalid JSON is it refused.
    fc.constantFrom('{"a":', "{'a':1}", "[1,2", "{}}", "\u0000", "nul", '{"a":1,}', "\ufeff{,}", "").map(json),
    fc
      .string({ maxLength: 60 })
      .filter((s) => {
        try {
          JSON.parse(s);
          return false;
        } catch {
          return true;
        }
      })
      .map(json),
    fc.constantFrom("null", "1", '"text"', "[]", "true", "-0", "1e999").map(json),
    fc.constantFrom('{"__proto__":{"polluted":true}}', '{"constructor":{"prototype":{"polluted":true}}}').map(json),
    fc
      .tuple(
        fc.constantFrom(
          "text/plain",
          "application/x-www-form-urlencoded",
          "multipart/form-data; boundary=x",
          "application/xml",
          "application/json; charset=utf-16",
        ),
        fc.constantFrom("{}", "a=b&c=d", "--x--", "<a/>"),
      )
      .map(([contentType, raw]) => ({ raw, contentType })),
    fc.integer({ min: bodyLimit + 1, max: bodyLimit + 4096 }).map((n) => json(JSON.stringify({ a: "x".repeat(n) }))),
    fc.integer({ min: 1_000, max: Math.floor(bodyLimit / 2) - 2 }).map((d) => json("[".repeat(d) + "]".repeat(d))),
    fc
      .integer({ min: 1_000, max: Math.floor(bodyLimit / 6) - 2 })
      .map((d) => json('{"a":'.repeat(d) + "1" + "}".repeat(d))),
  );
}

function authHeader(ctx: FuzzContext, broken: boolean, entry: HttpEntry): fc.Arbitrary<Record<string, string>> {
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
  const service = entry.acceptsServiceTokens === true;
  const valid = entry.adminOnly ? [ctx.adminToken] : service ? [ctx.token, ctx.serviceToken] : [ctx.token];
  if (!broken) return fc.constantFrom(...valid).map(bearer);
  const refused = [ctx.token, ctx.serviceToken, ctx.adminToken].filter((t) => !valid.includes(t));
  return fc.oneof(
    fc.constant({}),
    fc.constantFrom(...ctx.badTokens, ...refused).map(bearer),
    printable(80).map(bearer),
    fc
      .constantFrom(
        "Bearer",
        "Bearer ",
        "Basic YTpi",
        `Token ${ctx.token}`,
        `Bearer ${ctx.token}x`,
        `Bearer ${ctx.token} ${ctx.token}`,
      )
      .map((authorization) => ({ authorization })),
  );
}

/** Requests to one route, each breaking at least one thing (or, for an open route, junk it must shrug off). */
export function httpCases(entry: HttpEntry, ctx: FuzzContext, bodyLimit: number): fc.Arbitrary<HttpCase> {
  const [method, pattern] = entry.route.split(" ") as [string, string];
  if (entry.answers) {
    return fc
      .record({
        path: pattern.includes("*")
          ? fc
              .array(
                fc.oneof(
                  fc.string({ minLength: 1, maxLength: 12 }),
                  fc.constantFrom("..", "%2e%2e", "index.html", "etc", "passwd"),
                ),
                { maxLength: 4 },
              )
              .map((segs) => "/" + segs.map((s) => (s === "%2e%2e" ? s : encodeLoose(s))).join("/"))
          : fc.constant(pattern),
        query: fc.dictionary(printable(8), fc.string({ maxLength: 20 }), { maxKeys: 3 }),
        headers: fc.dictionary(
          fc.constantFrom(
            "origin",
            "x-request-id",
            "x-forwarded-for",
            "accept",
            "access-control-request-method",
            "access-control-request-headers",
            "range",
            "if-none-match",
          ),
          printable(60),
          { maxKeys: 3 },
        ),
      })
      .map(({ path, query, headers }) => ({
        method,
        path: withQuery(path, query),
        headers,
        broken: ["junk query and headers"],
      }));
  }
  const parts: string[] = [];
  if (entry.auth) parts.push("auth");
  if (entry.params) parts.push("params");
  if (entry.query) parts.push("query");
  if (entry.body) parts.push("body");
  return fc.subarray(parts, { minLength: 1 }).chain((broken) => {
    const is = (p: string) => broken.includes(p);
    const params: fc.Arbitrary<Record<string, unknown>> = entry.params
      ? paramValues(entry.params, is("params"))
      : fc.constant({});
    const query = entry.query
      ? is("query")
        ? (malformedObject(entry.query, false, fc.string({ maxLength: 10 })) as fc.Arbitrary<Record<string, unknown>>)
        : validObject(entry.query)
      : fc.constant({});
    const shapes = entry.body === undefined ? [] : [entry.body].flat();
    const body =
      shapes.length === 0
        ? fc.constant(undefined)
        : is("body")
          ? fc.oneof(
              ...shapes.map((shape) => ({
                weight: 3,
                arbitrary: malformedObject(shape, fc.oneof(notObject, deeplyNested)).map((json) => ({ json })),
              })),
              { weight: 1, arbitrary: rawBodies(bodyLimit) },
            )
          : fc.oneof(...shapes.map((shape) => validObject(shape).map((json) => ({ json }))));
    const auth = entry.auth ? authHeader(ctx, is("auth"), entry) : fc.constant({});
    return fc.record({ params, query, body, auth }).map(({ params, query, body, auth }) => {
      const path = pattern.replace(/:(\w+)/g, (_, name: string) => encodeLoose(String(params[name])));
      return {
        method,
        path: withQuery(path, query),
        headers: auth,
        ...(body === undefined ? {} : { body }),
        broken,
      };
    });
  });
}

function paramValues(fields: Record<string, Field>, broken: boolean): fc.Arbitrary<Record<string, unknown>> {
  const shape: Shape = { fields };
  if (!broken) return validObject(shape);
  // Only field-level breaks: a path has every param, an empty one included.
  return malformedObject(shape, false).map((value) => {
    const out = value as Record<string, unknown>;
    for (const name of Object.keys(fields)) if (!(name in out)) out[name] = "";
    return out;
  });
}

function withQuery(path: string, query: Record<string, unknown>): string {
  const pairs: string[] = [];
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) {
      pairs.push(`${encodeLoose(key)}=${encodeLoose(typeof v === "string" ? v : (JSON.stringify(v) ?? ""))}`);
    }
  }
  return pairs.length > 0 ? `${path}?${pairs.join("&")}` : path;
}

/**
 * encodeURIComponent, except that a lone surrogate (which it refuses) becomes its WTF-8 bytes, percent-encoded:
 * invalid UTF-8 in the URL, which the server's decoder must refuse or replace without harm.
 */
export function encodeLoose(text: string): string {
  let out = "";
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (code >= 0xd800 && code <= 0xdfff) {
      out += [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)]
        .map((b) => `%${b.toString(16).toUpperCase()}`)
        .join("");
    } else out += encodeURIComponent(char);
  }
  return out;
}

export interface SocketCase {
  /** The acked emit's arguments before the ack; empty: the event with nothing but its ack. */
  args: unknown[];
  /** Sent first without an ack (valid or not): must be ignored. */
  ackless: unknown[] | undefined;
  broken: string;
}

/** Emits of one event: a malformed payload, sometimes after extra arguments, sometimes preceded by an ackless copy. */
export function socketCases(entry: SocketEntry): fc.Arbitrary<SocketCase> {
  const wrongShapes = fc.oneof(notObject, deeplyNested, bytes);
  return fc
    .record({
      payload: fc.oneof(
        {
          weight: 8,
          arbitrary: malformedObject(entry.payload, wrongShapes).map((p) => ({ args: [p], broken: "payload" })),
        },
        { weight: 1, arbitrary: fc.constant({ args: [], broken: "no payload" }) },
      ),
      extra: fc.array(anyJson, { maxLength: 2 }),
      ackless: fc.option(fc.oneof(validObject(entry.payload), malformedObject(entry.payload, wrongShapes)), {
        freq: 3,
      }),
    })
    .map(({ payload, extra, ackless }) => ({
      args: payload.args.length > 0 ? [...payload.args, ...extra] : [],
      ackless: ackless === null ? undefined : [ackless],
      broken: payload.broken,
    }));
}
