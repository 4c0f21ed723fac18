// Small numeric helpers shared by the scenarios: percentiles, formatting, sleeping.
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const fixed = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "-");
export const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
export const kb = (bytes: number) => (bytes / 1024).toFixed(1);
/** "p50 / p99" of a list of milliseconds. */
export const p50p99 = (values: number[]) => `${fixed(percentile(values, 50))} / ${fixed(percentile(values, 99))}`;

export function addCounts(into: Record<string, number>, key: string, n = 1) {
  into[key] = (into[key] ?? 0) + n;
}
export const countsText = (counts: Record<string, number>) =>
  Object.entries(counts)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ") || "none";

/** A Markdown table: header row, separator and rows. */
export function markdownTable(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}
