// What `npm start` / `node dist/main.js` understands before it reads any configuration: `--help`, `--version`, and a
// `.env` file in the working directory. Everything else is configured by environment variables (the README's
// configuration table); a `.env` never overrides a variable the environment already sets, so a deployment's settings
// win over a developer's file.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The package's version, read from package.json beside src/ or dist/. */
export function packageVersion(): string {
  const path = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "package.json");
  const pkg = JSON.parse(readFileSync(path, "utf8")) as { version?: string };
  return pkg.version ?? "unknown";
}

export function helpText(variables: readonly string[]): string {
  return [
    `chat-gateway ${packageVersion()}`,
    "",
    "Usage: npm start [-- --help | --version]   (or: node dist/main.js)",
    "",
    "Configured by environment variables; a .env file in the working directory is read when present and never",
    "overrides a variable already set. With no DATABASE_URL it embeds PGlite under DATA_DIR; with no REDIS_URL it",
    "runs as one node. Every variable, its default and meaning is in the README's Configuration section.",
    "",
    "Variables:",
    ...wrap(variables.join(" "), 100).map((line) => `  ${line}`),
    "",
  ].join("\n");
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + word.length + 1 > width) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines;
}

export type CommandLineAction = { kind: "run" } | { kind: "print"; text: string } | { kind: "fail"; text: string };

/** Decides what the process does with its arguments; loads `.env` when it is going to run. */
export function readCommandLine(args: readonly string[], variables: readonly string[], cwd: string): CommandLineAction {
  if (args.includes("--help") || args.includes("-h")) return { kind: "print", text: helpText(variables) };
  if (args.includes("--version") || args.includes("-v")) return { kind: "print", text: `${packageVersion()}\n` };
  if (args.length > 0) return { kind: "fail", text: `unknown argument: ${args[0]}\n\n${helpText(variables)}` };
  const envFile = join(cwd, ".env");
  if (existsSync(envFile)) process.loadEnvFile(envFile);
  return { kind: "run" };
}
