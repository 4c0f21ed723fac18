// Refuses a URL whose query string is not valid percent-encoded UTF-8 (a "%" without two hex digits, or escapes of
// bytes that are no UTF-8, such as a lone surrogate's). Fastify's query parser (fast-querystring) does not refuse
// those: it keeps the undecoded text ("%ED%A0%80") as the value, so a route would act on a value the client never
// meant (a search for "%ED%A0%80" answered 200). The path's own escapes are checked by the router (FST_ERR_BAD_URL).
import type { FastifyRequest } from "fastify";
import { badRequest } from "../errors.js";

/** Whether the query part of a request URL has an escape that does not decode to UTF-8 text. */
export function hasMalformedQuery(url: string): boolean {
  const start = url.indexOf("?");
  if (start === -1 || !url.includes("%", start)) return false;
  try {
    decodeURIComponent(url.slice(start + 1));
    return false;
  } catch {
    return true;
  }
}

/** onRequest hook: a malformed query string is `bad_request`, before any route reads it. */
export async function refuseMalformedQuery(request: FastifyRequest): Promise<void> {
  if (hasMalformedQuery(request.url)) {
    throw badRequest("the query string is not valid percent-encoded UTF-8", [
      { field: "query", problem: "malformed percent-encoding" },
    ]);
  }
}
