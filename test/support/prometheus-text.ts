import { parseMetrics, type Sample } from "../../src/console/prometheus-text.js";

export type { Sample };

/**
 * The samples of an exposition, parsed as the console parses them, but strict: a line that
 * is neither a comment nor a sample fails the test rather than being skipped.
 */
export function parseExposition(text: string): Sample[] {
  const samples = parseMetrics(text);
  const sampleLines = text.split("\n").filter((line) => line !== "" && !line.startsWith("#"));
  if (samples.length !== sampleLines.length) {
    const bad = sampleLines.find((line) => parseMetrics(line).length === 0);
    throw new Error(`not a sample line: ${bad}`);
  }
  return samples;
}

/** The sum of the samples named `name` whose labels include `labels` (0 when none). */
export function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value))
    .reduce((sum, s) => sum + s.value, 0);
}

/** Fetches `url` (a /metrics endpoint) and parses it. */
export async function scrape(url: string): Promise<Sample[]> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
  return parseExposition(await res.text());
}
