// Opaque cursors for keyset paging on (a time, an id), newest first: the conversation list and message search.
import { badRequest } from "../errors.js";
import { isUuid } from "./ports.js";

export interface KeysetPosition {
  /** ISO-8601 UTC with milliseconds, as toISOString writes it (the columns are timestamptz(3)). */
  time: string;
  id: string;
}

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export function encodeKeysetCursor(time: Date, id: string): string {
  return Buffer.from(JSON.stringify([time.toISOString(), id])).toString("base64url");
}

/** The position a cursor names; anything this server did not issue is `bad_request` (field `cursor`). */
export function decodeKeysetCursor(cursor: string): KeysetPosition {
  try {
    const [time, id] = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown[];
    // Only the exact form we write: PostgreSQL would refuse some strings Date.parse accepts.
    if (typeof time === "string" && ISO_MS.test(time) && !Number.isNaN(Date.parse(time))) {
      if (typeof id === "string" && isUuid(id)) return { time, id };
    }
  } catch {
    // fall through
  }
  throw badRequest("malformed cursor", [{ field: "cursor", problem: "not a cursor this server issued" }]);
}
