// How a fuzz table entry describes an input, and how a malformed one is generated from that description.
//
// An input is a set of fields, each with arbitraries of values that are accepted (`valid`) and values that must be
// refused (`invalid`). A malformed input breaks at least one thing: a field gets an invalid value, a required field
// is left out, an unknown key is added where the schema is strict, or the whole value has the wrong shape. Fields not
// broken get valid values, so the refusal has to come from the broken part, deep in the handler, rather than from
// the first check it meets.
import fc from "fast-check";
import { notObject, prototypeKeys } from "./arbitraries.js";

export interface Field {
  valid: fc.Arbitrary<unknown>;
  invalid: fc.Arbitrary<unknown>;
  optional?: boolean;
}

export interface Shape {
  fields: Record<string, Field>;
  /** Unknown keys are refused (a strictObject schema); otherwise they are ignored and never generated. */
  strict?: boolean;
}

/** A field; `optional` fields are left out of some valid inputs. */
export const field = (valid: fc.Arbitrary<unknown>, invalid: fc.Arbitrary<unknown>, optional = false): Field => ({
  valid,
  invalid,
  optional,
});

const ABSENT = Symbol("absent");

function assemble(values: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== ABSENT));
}

const validValue = (f: Field) => (f.optional ? fc.option(f.valid, { nil: ABSENT as unknown }) : f.valid);

/** An input every field of which is valid (optional ones present or not). */
export function validObject(shape: Shape): fc.Arbitrary<Record<string, unknown>> {
  const entries = Object.entries(shape.fields).map(([name, f]) => [name, validValue(f)] as const);
  return fc.record(Object.fromEntries(entries)).map(assemble);
}

/** Some fields (at least one) invalid, the others valid or left out when optional. */
function brokenFields(shape: Shape): fc.Arbitrary<Record<string, unknown>> {
  const names = Object.keys(shape.fields);
  return fc
    .subarray(names, { minLength: 1 })
    .chain((broken) =>
      fc.record(
        Object.fromEntries(
          names.map((n) => [n, broken.includes(n) ? shape.fields[n]!.invalid : validValue(shape.fields[n]!)]),
        ),
      ),
    )
    .map(assemble);
}

/** A required field left out; the others valid. */
function missingField(shape: Shape, required: string[]): fc.Arbitrary<Record<string, unknown>> {
  return fc
    .tuple(fc.constantFrom(...required), validObject(shape))
    .map(([name, value]) => Object.fromEntries(Object.entries(value).filter(([k]) => k !== name)));
}

/** A valid input with one unknown key more. */
function extraKey(shape: Shape, value: fc.Arbitrary<unknown>): fc.Arbitrary<Record<string, unknown>> {
  const known = new Set(Object.keys(shape.fields));
  const key = fc.oneof(fc.string({ minLength: 1, maxLength: 20 }), prototypeKeys).filter((k) => !known.has(k));
  return fc.tuple(validObject(shape), key, value).map(([input, k, v]) => {
    const out = { ...input };
    // defineProperty: "__proto__" becomes an own key, as JSON.parse on the server makes it.
    Object.defineProperty(out, k, { value: v, enumerable: true, configurable: true, writable: true });
    return out;
  });
}

/**
 * An input that must be refused. `wrongShapes` replaces the whole value (default: anything but a plain object);
 * pass `false` where the transport always delivers an object (a query string).
 */
export function malformedObject(
  shape: Shape,
  wrongShapes: fc.Arbitrary<unknown> | false = notObject,
  extraValue: fc.Arbitrary<unknown> = fc.string({ maxLength: 20 }),
): fc.Arbitrary<unknown> {
  const required = Object.entries(shape.fields)
    .filter(([, f]) => !f.optional)
    .map(([n]) => n);
  const options: fc.Arbitrary<unknown>[] = [];
  if (Object.keys(shape.fields).length > 0) options.push(brokenFields(shape), brokenFields(shape));
  if (required.length > 0) options.push(missingField(shape, required));
  if (shape.strict) options.push(extraKey(shape, extraValue));
  if (wrongShapes !== false) options.push(wrongShapes);
  return fc.oneof(...options);
}
