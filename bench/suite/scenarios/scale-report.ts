/**
 * How the `scale` scenario reports a series: a table (rows = sizes, columns = adapters),
 * a log-log chart, and the growth exponent of each adapter's line, the slope b of
 * log(cost) against log(size), so that cost grows as size^b.
 */
import { formatNumber } from "../format.js";
import type { Table } from "../scenario.js";
import type { LineChart } from "../svg-chart.js";

/** A fitted exponent this far above linear growth is flagged: noise on a shared machine moves a fit by a few hundredths. */
export const FASTER_THAN_LINEAR_MARGIN = 0.1;

export interface SeriesColumn {
  /** The adapter (or other system) this column measured. */
  label: string;
  /** The figure at each size; NaN where it was not measured. */
  values: Map<number, number>;
  /** Why the column is empty, when it is. */
  unavailable?: string;
}

export interface Series {
  /** What is measured, e.g. "Set latency, p50". */
  title: string;
  unit: string;
  /** What the sizes count, e.g. "items per group". */
  size: string;
  sizes: number[];
  /**
   * The exponent of linear growth for this figure: 1 for a total (a snapshot's time,
   * a walk over every group), 0 for a figure per operation or per unit (latency of one
   * Set, memory per group), which stays flat when the total grows linearly.
   */
  linearExponent: 0 | 1;
  columns: SeriesColumn[];
  format(value: number): string;
}

export interface Growth {
  series: string;
  column: string;
  /** Least-squares slope over every measured size. */
  exponent: number;
  /** Slope between the two largest sizes: where growth faster than linear shows first. */
  lastStep: number;
  fasterThanLinear: boolean;
}

/** Slope of log10(y) against log10(x) by least squares over the points both logs exist for; NaN with fewer than two. */
export function growthExponent(points: Array<[number, number]>): number {
  const logs = points.filter(([x, y]) => x > 0 && y > 0 && Number.isFinite(x) && Number.isFinite(y)).map(([x, y]) => [Math.log10(x), Math.log10(y)]);
  if (logs.length < 2) return NaN;
  const meanX = logs.reduce((sum, [x]) => sum + x, 0) / logs.length;
  const meanY = logs.reduce((sum, [, y]) => sum + y, 0) / logs.length;
  const sxx = logs.reduce((sum, [x]) => sum + (x - meanX) ** 2, 0);
  const sxy = logs.reduce((sum, [x, y]) => sum + (x - meanX) * (y - meanY), 0);
  return sxx === 0 ? NaN : sxy / sxx;
}

const pointsOf = (series: Series, column: SeriesColumn): Array<[number, number]> => series.sizes.map((size) => [size, column.values.get(size) ?? NaN]);

export function growthOf(series: Series): Growth[] {
  return series.columns
    .filter((column) => !column.unavailable)
    .map((column) => {
      const points = pointsOf(series, column);
      const exponent = growthExponent(points);
      return {
        series: series.title,
        column: column.label,
        exponent,
        lastStep: growthExponent(points.slice(-2)),
        fasterThanLinear: exponent > series.linearExponent + FASTER_THAN_LINEAR_MARGIN,
      };
    });
}

/** What an exponent says, relative to linear growth of the figure's kind. */
export function verdict(series: Series, exponent: number): string {
  if (!Number.isFinite(exponent)) return "n/a";
  const excess = exponent - series.linearExponent;
  if (excess > FASTER_THAN_LINEAR_MARGIN) return "grows faster than linear";
  if (excess < -FASTER_THAN_LINEAR_MARGIN) return series.linearExponent === 1 ? "sublinear" : "falls (fixed costs spread)";
  return series.linearExponent === 1 ? "linear" : "flat (linear in total)";
}

/** Why a column is empty, short enough for a cell or a legend (the notes say the rest). */
function briefly(reason: string): string {
  return reason.length <= 24 ? reason : "not available";
}

export function seriesTable(series: Series): Table {
  const growth = growthOf(series);
  const exponentCell = (column: SeriesColumn, pick: (g: Growth) => number) => {
    const found = growth.find((g) => g.column === column.label);
    return found ? formatNumber(pick(found), 2) : "n/a";
  };
  return {
    title: `${series.title} (${series.unit}) by ${series.size}`,
    header: [series.size, ...series.columns.map((c) => c.label)],
    rows: [
      ...series.sizes.map((size) => [
        formatNumber(size),
        ...series.columns.map((c) => (c.unavailable ? briefly(c.unavailable) : series.format(c.values.get(size) ?? NaN))),
      ]),
      ["exponent b (fit)", ...series.columns.map((c) => exponentCell(c, (g) => g.exponent))],
      ["b, last step", ...series.columns.map((c) => exponentCell(c, (g) => g.lastStep))],
    ],
  };
}

export function seriesChart(series: Series): LineChart {
  const growth = growthOf(series);
  return {
    kind: "lines",
    logAxes: true,
    title: `${series.title} by ${series.size} (log-log)`,
    xLabel: series.size,
    yLabel: series.unit,
    // Every column keeps its place, an empty one too, so that an adapter has the same colour on every chart.
    series: series.columns.map((column) => {
      if (column.unavailable) return { label: `${column.label}: ${briefly(column.unavailable)}`, points: [], ours: true };
      const exponent = growth.find((g) => g.column === column.label)?.exponent ?? NaN;
      return { label: `${column.label} (b ${formatNumber(exponent, 2)})`, points: pointsOf(series, column), ours: true };
    }),
  };
}

/** Every series' exponents in one table, with what each says. */
export function growthTable(all: Series[]): Table {
  return {
    title: `Growth exponents b (cost ∝ size^b; linear is b = 1 for totals, 0 for figures per operation or unit; flagged above linear + ${FASTER_THAN_LINEAR_MARGIN})`,
    header: ["series", "adapter", "linear b", "b (fit)", "b, last step", "growth"],
    rows: all.flatMap((series) =>
      growthOf(series).map((g) => [
        series.title,
        g.column,
        String(series.linearExponent),
        formatNumber(g.exponent, 2),
        formatNumber(g.lastStep, 2),
        verdict(series, g.exponent),
      ]),
    ),
  };
}

/** One line per series and adapter, for the notes: the exponent and, when it is one, the flag. */
export function growthLines(all: Series[]): string[] {
  return all.flatMap((series) =>
    growthOf(series).map(
      (g) =>
        `${series.title}, ${g.column}: b = ${formatNumber(g.exponent, 2)} over ${formatNumber(series.sizes[0])}–${formatNumber(series.sizes.at(-1)!)} ${series.size} ` +
        `(last step ${formatNumber(g.lastStep, 2)}; linear = ${series.linearExponent}): ${verdict(series, g.exponent)}${g.fasterThanLinear ? " ⚑" : ""}`,
    ),
  );
}
