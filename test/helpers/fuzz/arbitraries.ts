// Malformed values for the input fuzz (test/integration/fuzz-inputs.test.ts): every kind of input a client can get
// wrong or forge, as fast-check arbitraries. Each names what it breaks, so a table entry reads as a list of reasons.
import fc from "fast-check";

/** C0 controls (NUL included), DEL and C1 controls. */
const CONTROLS = [...Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)), "\u007f", "\u0085", "\u009f"];
const LONE_SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff"];

const wrap = (middle: fc.Arbitrary<string>) =>
  fc.tuple(fc.string({ maxLength: 8 }), middle, fc.string({ maxLength: 8 })).map(([a, m, b]) => a + m + b);

/** Text with at least one control character (NUL, newline, escape, DEL, C1...) somewhere. */
export const withControl = wrap(fc.constantFrom(...CONTROLS));
/**
 * Text with a control character between two letters: for free-text fields, which trim their ends (a leading tab or
 * a trailing newline is trimmed off and the rest is valid), so only a control inside the text must be refused.
 */
export const withInnerControl = fc
  .tuple(fc.string({ maxLength: 8 }), fc.constantFrom(...CONTROLS), fc.string({ maxLength: 8 }))
  .map(([a, control, b]) => `a${a}${control}${b}z`);
/** Text with a NUL character. */
export const withNul = wrap(fc.constant("\u0000"));
/** Text with an unpaired UTF-16 surrogate (not Unicode text; no UTF-8 form). */
export const withLoneSurrogate = wrap(fc.constantFrom(...LONE_SURROGATES));
/** Empty or only whitespace. */
export const blank = fc.constantFrom("", " ", "   ", "\t", "\n \r\n", "\u3000", "\ufeff");

/** A string longer than `max` (up to four times), of one repeated character or random text. */
export const tooLong = (max: number) =>
  fc.integer({ min: max + 1, max: Math.max(max * 4, max + 10) }).chain((length) =>
    fc.oneof(
      fc.constantFrom("x", "é", "😀", " ").map((c) => c.repeat(length)),
      fc.string({ minLength: length, maxLength: length }),
    ),
  );

/** Too long even after trimming (free-text fields trim their ends): `tooLong` with a letter at each end. */
export const tooLongText = (max: number) =>
  tooLong(max).map((text) => {
    const chars = [...text];
    return `a${chars.slice(1, -1).join("")}z`;
  });

/** Values nested `depth` levels deep, as arrays or objects. */
export const deeplyNested = fc.tuple(fc.integer({ min: 20, max: 1_500 }), fc.boolean()).map(([depth, arrays]) => {
  let value: unknown = "bottom";
  for (let i = 0; i < depth; i++) value = arrays ? [value] : { a: value };
  return value;
});

/** Keys JavaScript gives a meaning to, as object keys. */
export const prototypeKeys = fc.constantFrom("__proto__", "constructor", "prototype", "toString", "hasOwnProperty");

/** Objects that try to reach a prototype. */
export const prototypePolluting = fc.constantFrom<unknown>(
  JSON.parse('{"__proto__": {"polluted": true}}'),
  { constructor: { prototype: { polluted: true } } },
  JSON.parse('{"__proto__": null}'),
);

/** Numbers that are not seqs: negative, fractional, past 2^31 - 1, past 2^53, huge. */
export const badNumber = fc.oneof(
  fc.integer({ max: -1 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((n) => !Number.isInteger(n)),
  fc.integer({ min: 2_147_483_648, max: Number.MAX_SAFE_INTEGER }),
  fc.constantFrom(2 ** 53 + 2, 1e21, Number.MAX_VALUE, -Number.MAX_VALUE, 0.5, -0.5, 1e-9),
);
/** Strings that look like numbers (a JSON client's NaN, Infinity, hex...) where a number is required. */
export const numberLikeString = fc.constantFrom(
  "NaN",
  "Infinity",
  "-Infinity",
  "1",
  "0",
  "1e3",
  "0x10",
  "",
  " 1",
  "-1",
);

/** Any JSON-ish value of every type, or an array or object of them. */
export const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 40 }),
  fc.array(fc.oneof(fc.integer(), fc.string({ maxLength: 10 }), fc.constant(null)), { maxLength: 5 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.integer(), fc.string({ maxLength: 10 })), { maxKeys: 4 }),
);

/** Bytes: Socket.IO sends them as a binary attachment, HTTP's JSON as {type: "Buffer", data: [...]}. */
export const bytes = fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b));

const typed = (keep: (v: unknown) => boolean) =>
  fc.oneof(anyJson, deeplyNested, prototypePolluting, bytes).filter((v) => !keep(v));
/** Anything but a string. */
export const notString = typed((v) => typeof v === "string");
/** Anything but a number (strings that look like numbers included). */
export const notNumber = fc.oneof(
  typed((v) => typeof v === "number"),
  numberLikeString,
);
/** Anything but a boolean ("true" and 1 included). */
export const notBoolean = fc.oneof(
  typed((v) => typeof v === "boolean"),
  fc.constantFrom<unknown>("true", "false", 1, 0),
);
/** Anything but an array (an object with numeric keys included). */
export const notArray = fc.oneof(typed(Array.isArray), fc.constant<unknown>({ 0: "a", length: 1 }));
/** Anything but a plain object: null, scalars, arrays, deep arrays. */
export const notObject = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.string({ maxLength: 40 }),
  fc.array(anyJson, { maxLength: 5 }),
  deeplyNested.filter(Array.isArray),
);

/** A string that is not a valid value for a field of at most `max` characters: wrong type, too long, controls... */
export const badText = (max: number) =>
  fc.oneof(notString, tooLongText(max), withInnerControl, withNul, withLoneSurrogate, blank);

/** An integer field's bad values: every wrong number and every wrong type. */
export const badInteger = fc.oneof(badNumber, notNumber);

/** A random UUID: well-formed, and naming nothing (the chance of naming a real row is nil). */
export const unknownUuid = fc.uuid();
/** Ids that cannot name anything: random text, too long, controls, surrogates, empty. */
export const junkId = fc.oneof(
  fc.string({ minLength: 1, maxLength: 64 }),
  tooLong(64),
  withControl,
  withLoneSurrogate,
  fc.constant(""),
  fc.constantFrom(
    "00000000-0000-0000-0000-000000000000",
    "../../etc/passwd",
    "%00",
    "null",
    "undefined",
    "' OR 1=1 --",
  ),
);
/** Where an id is expected: a junk id, an unknown one, or not a string at all. */
export const badId = fc.oneof(junkId, unknownUuid, notString);
