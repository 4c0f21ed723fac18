// A PostgreSQL script split into the statements a migration sends one by one, by a small tokenizer that knows
// PostgreSQL's quoting: strings (E'' escapes included), quoted identifiers, dollar-quoted bodies, nested block
// comments and SQL-standard BEGIN ATOMIC function bodies. Its own module: the migration runner only needs the
// statements, and the lexing rules are easier to read and test on their own.

/**
 * The statements of a migration script, to be sent one by one: PGlite (like any extended-protocol query) accepts
 * only one statement per query. Transaction control is dropped because the runner already wraps the whole migration
 * in a transaction: Prisma itself emits BEGIN ... COMMIT around some enum changes, and a COMMIT there would end our
 * transaction (and release the lock) half-way.
 */
export function executableStatements(sql: string): string[] {
  return splitSqlStatements(sql).filter((s) => !isTransactionControl(s));
}

function isTransactionControl(statement: string): boolean {
  const text = stripComments(statement).trim().replace(/\s+/g, " ");
  return /^(?:(?:BEGIN|COMMIT|END)(?: WORK| TRANSACTION)?|START TRANSACTION)$/i.test(text);
}

export function stripComments(statement: string): string {
  let out = "";
  forEachToken(statement, (kind, text) => {
    if (kind !== "comment") out += text;
  });
  return out;
}

/**
 * Splits a PostgreSQL script on top-level semicolons, keeping quoted text, identifiers, dollar-quoted bodies,
 * comments and SQL-standard `BEGIN ATOMIC ... END` function bodies intact. Statements that are only comments or
 * whitespace are dropped; the others keep their leading comments (they help in error messages).
 */
export function splitSqlStatements(sql: string): string[] {
  const statements: string[] = [];
  let current = "";
  let meaningful = false;
  // Inside BEGIN ATOMIC bodies semicolons end inner statements, not the outer one; CASE ... END nests there too.
  let blockDepth = 0;
  let previousWord = "";
  forEachToken(sql, (kind, text) => {
    if (kind === "semicolon" && blockDepth === 0) {
      if (meaningful) statements.push(current.trim());
      current = "";
      meaningful = false;
      previousWord = "";
      return;
    }
    current += text;
    if (kind !== "comment" && kind !== "space") meaningful = true;
    if (kind === "word") {
      const word = text.toUpperCase();
      if (word === "ATOMIC" && previousWord === "BEGIN") blockDepth++;
      else if (blockDepth > 0 && word === "CASE") blockDepth++;
      else if (blockDepth > 0 && word === "END") blockDepth--;
      previousWord = word;
    }
  });
  if (meaningful) statements.push(current.trim());
  return statements;
}

type TokenKind = "word" | "quoted" | "comment" | "space" | "semicolon" | "other";

function forEachToken(sql: string, emit: (kind: TokenKind, text: string) => void): void {
  const n = sql.length;
  let i = 0;
  const isWordStart = (c: string) => /[A-Za-z_\u0080-\uffff]/.test(c);
  const isWordChar = (c: string) => /[A-Za-z0-9_$\u0080-\uffff]/.test(c);
  while (i < n) {
    const c = sql[i] as string;
    const next = sql[i + 1] ?? "";
    const start = i;
    if (c === "-" && next === "-") {
      const end = sql.indexOf("\n", i);
      i = end === -1 ? n : end;
      emit("comment", sql.slice(start, i));
    } else if (c === "/" && next === "*") {
      // PostgreSQL block comments nest.
      let depth = 0;
      while (i < n) {
        if (sql.startsWith("/*", i)) {
          depth++;
          i += 2;
        } else if (sql.startsWith("*/", i)) {
          depth--;
          i += 2;
          if (depth === 0) break;
        } else i++;
      }
      emit("comment", sql.slice(start, i));
    } else if (c === "'") {
      // E'...' strings take backslash escapes; standard strings only the doubled quote.
      const escapes = i > 0 && /[eE]/.test(sql[i - 1] as string) && !(i > 1 && isWordChar(sql[i - 2] as string));
      i++;
      while (i < n) {
        const d = sql[i];
        if (escapes && d === "\\") i += 2;
        else if (d === "'" && sql[i + 1] === "'") i += 2;
        else if (d === "'") {
          i++;
          break;
        } else i++;
      }
      emit("quoted", sql.slice(start, i));
    } else if (c === '"') {
      i++;
      while (i < n) {
        if (sql[i] === '"' && sql[i + 1] === '"') i += 2;
        else if (sql[i] === '"') {
          i++;
          break;
        } else i++;
      }
      emit("quoted", sql.slice(start, i));
    } else if (c === "$" && !(i > 0 && isWordChar(sql[i - 1] as string))) {
      // $tag$ ... $tag$; "$1" (a parameter) is not a quote.
      const tag = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(i));
      if (tag === null) {
        i++;
        emit("other", c);
      } else {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        i = close === -1 ? n : close + tag[0].length;
        emit("quoted", sql.slice(start, i));
      }
    } else if (c === ";") {
      i++;
      emit("semicolon", c);
    } else if (/\s/.test(c)) {
      while (i < n && /\s/.test(sql[i] as string)) i++;
      emit("space", sql.slice(start, i));
    } else if (isWordStart(c)) {
      while (i < n && isWordChar(sql[i] as string)) i++;
      emit("word", sql.slice(start, i));
    } else {
      i++;
      emit("other", c);
    }
  }
}
