/**
 * Hand-drawn SVG charts for the results: horizontal bars (one figure per system) and
 * lines (a figure against offered load, or on log-log axes a cost against a size).
 * Panels stack vertically in one file.
 */

export interface BarChart {
  kind: "bars";
  title: string;
  unit: string;
  /** `system` names what a bar measures when the label says more (bars of one system share a colour); default the label. */
  bars: Array<{ label: string; value: number; ours?: boolean; system?: string }>;
}

export interface LineChart {
  kind: "lines";
  title: string;
  xLabel: string;
  yLabel: string;
  series: Array<{ label: string; points: Array<[number, number]>; ours?: boolean }>;
  /** A horizontal line, such as the latency bound a step must stay under. */
  limit?: { y: number; label: string };
  /** Top of the y axis; points above it are drawn at the top edge. Default: the largest value. */
  maxY?: number;
  /**
   * Both axes logarithmic, ticks at powers of ten, for a cost against a size that spans
   * decades: a straight line of slope b is growth as size^b. Points at or below zero
   * cannot be drawn and are left out; `maxY` and `limit` still apply. Default false.
   */
  logAxes?: boolean;
}

export type Chart = BarChart | LineChart;

const WIDTH = 760;
const LABEL_WIDTH = 290;
const BAR_AREA = 360;
const BAR_HEIGHT = 18;
const BAR_GAP = 8;
const PANEL_GAP = 28;
const TITLE_HEIGHT = 26;
const LINE_PLOT = { left: 70, top: 10, width: 500, height: 200 };
const OURS_COLOURS = ["#1d4ed8", "#0e7490", "#7c3aed"];
const PEER_COLOURS = ["#ea580c", "#6b7280", "#ca8a04", "#be123c"];
const FONT = 'font-family="system-ui, sans-serif" font-size="12"';

export function renderSvg(charts: Chart[]): string {
  const panels: string[] = [];
  let y = 10;
  for (const chart of charts) {
    const { svg, height } = chart.kind === "bars" ? barPanel(chart, y) : linePanel(chart, y);
    panels.push(svg);
    y += height + PANEL_GAP;
  }
  const height = Math.max(40, y - PANEL_GAP + 10);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ${FONT}>`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    ...panels,
    "</svg>",
    "",
  ].join("\n");
}

/** One colour per system, in order of first appearance: blues for ours, warm and grey for peers. */
function colourPicker(): (system: string, ours: boolean | undefined) => string {
  const assigned = new Map<string, string>();
  let oursIndex = 0;
  let peerIndex = 0;
  return (system, ours) => {
    let colour = assigned.get(system);
    if (!colour) {
      colour = ours ? OURS_COLOURS[oursIndex++ % OURS_COLOURS.length] : PEER_COLOURS[peerIndex++ % PEER_COLOURS.length];
      assigned.set(system, colour);
    }
    return colour;
  };
}

function barPanel(chart: BarChart, top: number): { svg: string; height: number } {
  const finite = chart.bars.map((bar) => bar.value).filter(Number.isFinite);
  const max = Math.max(1e-9, ...finite);
  const colour = colourPicker();
  const parts = [text(10, top + 16, chart.title, 'font-weight="bold" font-size="14"')];
  chart.bars.forEach((bar, index) => {
    const y = top + TITLE_HEIGHT + index * (BAR_HEIGHT + BAR_GAP);
    const width = Number.isFinite(bar.value) ? Math.max(1, (bar.value / max) * BAR_AREA) : 0;
    parts.push(text(LABEL_WIDTH - 8, y + 13, bar.label, 'text-anchor="end"'));
    parts.push(`<rect x="${LABEL_WIDTH}" y="${y}" width="${width.toFixed(1)}" height="${BAR_HEIGHT}" fill="${colour(bar.system ?? bar.label, bar.ours)}"/>`);
    const value = Number.isFinite(bar.value) ? `${compact(bar.value)} ${chart.unit}` : "not available";
    parts.push(text(LABEL_WIDTH + width + 6, y + 13, value));
  });
  return { svg: `<g>${parts.join("")}</g>`, height: TITLE_HEIGHT + chart.bars.length * (BAR_HEIGHT + BAR_GAP) };
}

/** Where a line chart puts its values, and the ticks each axis shows (value and label position). */
interface Axes {
  px(x: number): number;
  py(y: number): number;
  xTicks: number[];
  yTicks: number[];
  /** Whether a point can be drawn on these axes. */
  drawable(point: [number, number]): boolean;
}

function linePanel(chart: LineChart, top: number): { svg: string; height: number } {
  const plot = { ...LINE_PLOT, top: top + TITLE_HEIGHT + LINE_PLOT.top };
  const axes = chart.logAxes ? logAxes(chart, plot) : linearAxes(chart, plot);
  const { px, py } = axes;
  const parts = [text(10, top + 16, chart.title, 'font-weight="bold" font-size="14"')];
  parts.push(`<rect x="${plot.left}" y="${plot.top}" width="${plot.width}" height="${plot.height}" fill="none" stroke="#9ca3af"/>`);
  for (const x of axes.xTicks) {
    parts.push(text(px(x), plot.top + plot.height + 14, compact(x), 'text-anchor="middle" fill="#4b5563"'));
  }
  axes.yTicks.forEach((y, tick) => {
    parts.push(text(plot.left - 6, py(y) + 4, compact(y), 'text-anchor="end" fill="#4b5563"'));
    if (tick > 0) parts.push(`<line x1="${plot.left}" x2="${plot.left + plot.width}" y1="${py(y)}" y2="${py(y)}" stroke="#e5e7eb"/>`);
  });
  parts.push(text(plot.left + plot.width / 2, plot.top + plot.height + 30, chart.xLabel, 'text-anchor="middle"'));
  parts.push(text(14, plot.top + plot.height / 2, chart.yLabel, `text-anchor="middle" transform="rotate(-90 14 ${plot.top + plot.height / 2})"`));
  if (chart.limit && axes.drawable([1, chart.limit.y])) {
    const y = py(chart.limit.y);
    parts.push(`<line x1="${plot.left}" x2="${plot.left + plot.width}" y1="${y}" y2="${y}" stroke="#dc2626" stroke-dasharray="4 3"/>`);
    parts.push(text(plot.left + plot.width - 4, y - 4, chart.limit.label, 'text-anchor="end" fill="#dc2626"'));
  }
  const colour = colourPicker();
  chart.series.forEach((series, index) => {
    const stroke = colour(series.label, series.ours);
    const drawn = series.points.filter(axes.drawable);
    if (drawn.length > 0) {
      parts.push(`<polyline fill="none" stroke="${stroke}" stroke-width="2" points="${drawn.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" ")}"/>`);
      for (const [x, y] of drawn) parts.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${stroke}"/>`);
    }
    const legendY = plot.top + 8 + index * 18;
    const legendX = plot.left + plot.width + 14;
    parts.push(`<rect x="${legendX}" y="${legendY}" width="12" height="12" fill="${stroke}"/>`);
    parts.push(text(legendX + 18, legendY + 10, series.label));
  });
  return { svg: `<g>${parts.join("")}</g>`, height: TITLE_HEIGHT + LINE_PLOT.top + LINE_PLOT.height + 40 };
}

type Plot = typeof LINE_PLOT;

function linearAxes(chart: LineChart, plot: Plot): Axes {
  const drawable = ([x, y]: [number, number]) => Number.isFinite(x) && Number.isFinite(y);
  const points = chart.series.flatMap((series) => series.points).filter(drawable);
  const maxX = niceCeiling(Math.max(1e-9, ...points.map(([x]) => x)));
  const maxY = chart.maxY ?? niceCeiling(Math.max(1e-9, chart.limit?.y ?? 0, ...points.map(([, y]) => y)));
  const [xTicks, yTicks] = [tickCount(maxX), tickCount(maxY)];
  return {
    px: (x) => plot.left + (x / maxX) * plot.width,
    py: (y) => plot.top + plot.height - (Math.min(y, maxY) / maxY) * plot.height,
    xTicks: Array.from({ length: xTicks + 1 }, (_, tick) => (maxX * tick) / xTicks),
    yTicks: Array.from({ length: yTicks + 1 }, (_, tick) => (maxY * tick) / yTicks),
    drawable,
  };
}

/** Decades from the one at or below the smallest value to the one at or above the largest. */
function logAxes(chart: LineChart, plot: Plot): Axes {
  const drawable = ([x, y]: [number, number]) => Number.isFinite(x) && Number.isFinite(y) && x > 0 && y > 0;
  const points = chart.series.flatMap((series) => series.points).filter(drawable);
  const decades = (values: number[]): [number, number] => {
    if (values.length === 0) return [0, 1];
    const low = Math.floor(Math.log10(Math.min(...values)) + 1e-9);
    const high = Math.ceil(Math.log10(Math.max(...values)) - 1e-9);
    return [low, Math.max(high, low + 1)];
  };
  const [xLow, xHigh] = decades(points.map(([x]) => x));
  const limitY = chart.limit && chart.limit.y > 0 ? [chart.limit.y] : [];
  const [yLow, yHighAuto] = decades([...points.map(([, y]) => y), ...limitY]);
  const yHigh = chart.maxY !== undefined && chart.maxY > 0 ? Math.max(yLow + 1, Math.ceil(Math.log10(chart.maxY) - 1e-9)) : yHighAuto;
  const position = (value: number, low: number, high: number) => (Math.min(Math.max(Math.log10(value), low), high) - low) / (high - low);
  const powers = (low: number, high: number) => {
    // At most about six labels an axis: every decade, or every other one when they are many.
    const step = Math.ceil((high - low) / 6);
    const ticks: number[] = [];
    for (let power = low; power <= high; power += step) ticks.push(10 ** power);
    return ticks;
  };
  return {
    px: (x) => plot.left + position(x, xLow, xHigh) * plot.width,
    py: (y) => plot.top + plot.height - position(y, yLow, yHigh) * plot.height,
    xTicks: powers(xLow, xHigh),
    yTicks: powers(yLow, yHigh),
    drawable,
  };
}

function text(x: number, y: number, content: string, attributes = ""): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attributes}>${escapeXml(content)}</text>`;
}

function escapeXml(content: string): string {
  return content.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");
}

/** Axis ends as leading digits, each with the number of intervals that puts every tick on a round value. */
const AXIS_ENDS: Array<[leading: number, intervals: number]> = [[1, 5], [1.5, 3], [2, 4], [2.5, 5], [3, 3], [4, 4], [5, 5], [6, 3], [8, 4], [10, 5]];

/** The smallest axis end at or above n. */
function niceCeiling(n: number): number {
  const power = 10 ** Math.floor(Math.log10(n));
  const [leading] = AXIS_ENDS.find(([end]) => end * power >= n * (1 - 1e-9)) ?? [10];
  return leading * power;
}

function tickCount(max: number): number {
  const leading = max / 10 ** Math.floor(Math.log10(max));
  return AXIS_ENDS.find(([end]) => Math.abs(end - leading) < 1e-9)?.[1] ?? 4;
}

/** 1234 -> "1.2k", 0.5 -> "0.5": labels short enough for an axis. */
function compact(n: number): string {
  const abs = Math.abs(n);
  if (abs >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (abs >= 1e4) return `${+(n / 1e3).toFixed(0)}k`;
  if (abs >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
  if (abs >= 10) return `${+n.toFixed(0)}`;
  // Log axes reach below 0.01, which two decimals would print as 0.
  if (abs > 0 && abs < 0.01) return `${+n.toPrecision(1)}`;
  return `${+n.toFixed(2)}`;
}
