// Opaque keyset cursors on (created_at, id) for the admin lists: stable while rows are added, and refused with
// `bad_request` when they are not one this server issued.
import { isUuid } from "../chat/ports.js";
import { badRequest } from "../errors.js";

export interface Position {
  createdAt: Date;
  id: string;
}

export function encodeCursor(row: Position): string {
  return Buffer.from(JSON.stringify([row.createdAt.toISOString(), row.id])).toString("base64url");
}

export function decodeCursor(cursor: string | undefined): Position | undefined {
  if (cursor === undefined) return undefined;
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown[];
    if (typeof at === "string" && !Number.isNaN(Date.parse(at)) && typeof id === "string" && isUuid(id)) {
      return { createdAt: new Date(at), id };
    }
  } catch {
    // fall through
  }
  throw badRequest("malformed cursor", [{ field: "cursor", problem: "not a cursor this server issued" }]);
}

/** A page of `limit` rows read as `limit + 1`: the extra row only says whether there is more. */
export function pageOf<T extends Position>(rows: T[], limit: number): { rows: T[]; nextCursor: string | null } {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { rows: page, nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last) : null };
}
