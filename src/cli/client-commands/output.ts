import { UsageError } from "./exit-codes.js";

/** How a command prints what it got: one JSON value per line, or aligned columns for a person. */
export type OutputFormat = "json" | "table";

/** `--output`, defaulting to a table for a person at a terminal and JSON for a pipe or a file. */
export function outputFormat(flag: string | undefined, stdoutIsTerminal: boolean): OutputFormat {
  if (flag === undefined) return stdoutIsTerminal ? "table" : "json";
  if (flag === "json" || flag === "table") return flag;
  throw new UsageError(`--output takes json or table, not '${flag}'`);
}

/** A value as one line of JSON, with `\u2028`-style characters left as JSON.stringify writes them. */
export function jsonLine(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}

/**
 * Prints records in the chosen format: each as a JSON line, or as a row of a table whose
 * columns are aligned. Rows are printed at each `flush()` (once per page of a listing, so
 * that a long listing streams); a column only ever widens, so rows printed earlier stay
 * aligned with the header. On a terminal the last column is cut to the screen's width.
 */
export class RecordPrinter {
  private readonly rows: string[][] = [];
  private readonly widths: number[];
  private headerPrinted = false;

  constructor(
    readonly format: OutputFormat,
    private readonly columns: readonly string[],
    private readonly out: NodeJS.WritableStream & { columns?: number; isTTY?: boolean } = process.stdout,
  ) {
    this.widths = columns.map((name) => name.length);
  }

  /** One record: `json` for the JSON format, `cells` (one per column) for the table. */
  add(json: unknown, cells: readonly string[]): void {
    if (this.format === "json") this.out.write(jsonLine(json));
    else this.rows.push(cells.map((cell) => cell.replace(/[\r\n\t]/g, " ")));
  }

  flush(): void {
    if (this.format === "json" || (this.rows.length === 0 && this.headerPrinted)) return;
    for (const row of this.rows) row.forEach((cell, index) => (this.widths[index] = Math.max(this.widths[index], cell.length)));
    let text = "";
    if (!this.headerPrinted) text += this.line(this.columns);
    this.headerPrinted = true;
    for (const row of this.rows.splice(0)) text += this.line(row);
    this.out.write(text);
  }

  private line(cells: readonly string[]): string {
    const last = cells.length - 1;
    let line = cells.map((cell, index) => (index === last ? cell : cell.padEnd(this.widths[index]))).join("  ");
    // A terminal of unknown size (a pseudo-terminal nobody sized) reports 0 columns.
    const room = this.out.isTTY ? this.out.columns : undefined;
    if (room !== undefined && room > 0 && line.length > room) line = `${line.slice(0, Math.max(room - 1, 0))}…`;
    return `${line.trimEnd()}\n`;
  }
}

/** A value for a table cell: compact JSON, or "-" when there is none. */
export function cell(value: unknown): string {
  return value === undefined ? "-" : JSON.stringify(value);
}

/** A time in milliseconds since the epoch as a table cell, in UTC to the second. */
export function timeCell(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}
