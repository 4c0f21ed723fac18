// The body of a route whose every field is optional. No body at all reads as `{}`; a JSON `null` (or any other
// JSON value) is a body the client sent, and goes to the schema as it is, which refuses what is not an object. With
// `request.body ?? {}` a `null` body passed as an empty one: a malformed request that suspended a user.
import type { FastifyRequest } from "fastify";

export const optionalBody = (request: FastifyRequest): unknown => (request.body === undefined ? {} : request.body);
