/** Points a chart line gets at most: the chart draws a dot per point. */
const MAX_POINTS = 200;

/**
 * An RSS series ([ms, bytes] readings) as a chart line: seconds since `originMs` (points
 * before it dropped) against MiB, thinned evenly to at most MAX_POINTS.
 */
export function rssLine(points: Array<[number, number]>, originMs: number): Array<[number, number]> {
  const shown = points.filter(([ms]) => ms >= originMs);
  if (shown.length === 0) return [];
  const gapMs = (shown.at(-1)![0] - shown[0][0]) / MAX_POINTS;
  const kept: Array<[number, number]> = [];
  let lastMs = -Infinity;
  for (const [ms, bytes] of shown) {
    if (ms - lastMs < gapMs) continue;
    kept.push([(ms - originMs) / 1000, bytes / 2 ** 20]);
    lastMs = ms;
  }
  return kept;
}
