// Fastify validates and documents the routes with the same zod schemas (packages/protocol/src/schemas.ts and the answers in
// api-schemas.ts); fastify-type-provider-zod gives the handlers their types and turns the schemas into OpenAPI.
//
// The validator is ours, not the provider's, because its error must be the ZodError itself: errors.ts maps a ZodError
// to the contract's `bad_request` (or `payload_too_large` for a long content) with the field-by-field details, the
// same answer a route that parsed its body by hand gave. The provider's validator hands Fastify Ajv-like issue
// objects instead, which would need translating back.
import type { FastifyInstance, FastifyRequest, FastifySchemaCompiler } from "fastify";
import { ZodType } from "zod";

/**
 * Fastify hands a validator `null` for an absent body, which a schema could not tell from a JSON `null` the client
 * sent (the first reads as "no body", the second is a malformed one). Routes with a body schema see this marker
 * instead, set by `markAbsentBody`, and the validator turns it back into `undefined`.
 */
const ABSENT_BODY = Symbol("absent body");

export const zodValidatorCompiler: FastifySchemaCompiler<ZodType> =
  ({ schema }) =>
  (data) => {
    const result = schema.safeParse(data === ABSENT_BODY ? undefined : data);
    // A ZodError is an Error: Fastify passes it on as it is (adding statusCode 400) to the error handler.
    return result.success ? { value: result.data } : { error: result.error };
  };

/**
 * For a part a route validates itself (its shape depends on the caller, or the part is checked cryptographically):
 * documented by its schema, passed through unchanged.
 */
export const documentedOnly = () => (data: unknown) => ({ value: data === ABSENT_BODY ? undefined : data });

/**
 * Answers are serialized as Fastify does without a schema (JSON.stringify), byte for byte: their schemas describe
 * them in the OpenAPI document. With `check`, an answer its schema refuses throws (an `internal` error): the
 * in-process tests run that way, so every answer they see is checked against what the document promises.
 */
export function documentingSerializerCompiler(check: boolean) {
  return ({ schema }: { schema: unknown }) => {
    const zod = responseSchemaOf(schema);
    return (data: unknown): string => {
      if (check && zod !== undefined) {
        const result = zod.safeParse(data);
        if (!result.success) throw new Error(`answer does not match its documented schema: ${result.error.message}`);
      }
      return JSON.stringify(data);
    };
  };
}

function responseSchemaOf(schema: unknown): ZodType | undefined {
  if (schema instanceof ZodType) return schema;
  return undefined;
}

/** preValidation hook: an absent body reaches a route's body schema as `undefined`, not as `null`. */
export async function markAbsentBody(request: FastifyRequest): Promise<void> {
  if (request.body === undefined && request.routeOptions.schema?.body !== undefined) {
    (request as { body: unknown }).body = ABSENT_BODY;
  }
}

/** Sets the zod validator and the documenting serializer on an instance (the main and the operations server). */
export function useZodSchemas(app: FastifyInstance, checkAnswers = false): void {
  app.setValidatorCompiler(zodValidatorCompiler);
  app.setSerializerCompiler(documentingSerializerCompiler(checkAnswers));
  app.addHook("preValidation", markAbsentBody);
}
