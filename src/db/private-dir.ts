// DATA_DIR holds the embedded database and, in embedded mode, the generated JWT secret and VAPID keys: only the
// gateway's own user may read it. Created with mode 0700; an existing one with group or other access is tightened.
import { chmodSync, mkdirSync, statSync } from "node:fs";

/** Creates `dir` (and missing parents) owner-only, or tightens it to 0700. Answers a warning when it had to. */
export function ensurePrivateDir(dir: string): string | undefined {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const mode = statSync(dir).mode & 0o777;
  if ((mode & 0o077) === 0) return undefined;
  try {
    chmodSync(dir, 0o700);
    return `${dir} was readable by others (mode ${mode.toString(8)}): changed to 700`;
  } catch {
    return `${dir} is readable by others (mode ${mode.toString(8)}) and could not be changed to 700`;
  }
}
