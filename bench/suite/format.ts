/** Number formatting and plain-text tables for the suite's output. */

export function formatNumber(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return "n/a";
  return n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** A ratio as "0.83x"; "n/a" when either side is missing. */
export function formatRatio(n: number): string {
  return Number.isFinite(n) ? `${n.toFixed(2)}x` : "n/a";
}

export function formatMs(n: number): string {
  return formatNumber(n, n < 10 ? 1 : 0);
}

export function formatMicros(n: number): string {
  return formatNumber(n, n < 10 ? 2 : 1);
}

export function formatMiB(bytes: number): string {
  return formatNumber(bytes / 1024 / 1024, 1);
}

export function formatKiB(bytes: number): string {
  return formatNumber(bytes / 1024, 1);
}

/** Columns padded to their widest cell: the first left-aligned, the rest right-aligned. */
export function textTable(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...all.map((row) => (row[column] ?? "").length)));
  const line = (row: string[]) =>
    row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

export function markdownTable(header: string[], rows: string[][]): string {
  const escape = (cell: string) => cell.replaceAll("|", "\\|");
  const line = (row: string[]) => `| ${row.map(escape).join(" | ")} |`;
  const align = header.map((_, column) => (column === 0 ? "---" : "---:"));
  return [line(header), line(align), ...rows.map(line)].join("\n");
}
