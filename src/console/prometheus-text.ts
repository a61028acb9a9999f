/** The few figures the server page needs, read from the Prometheus text exposition of `/metrics`. */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Every sample line (comments skipped); label values unescaped. */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const label of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[label[1]] = label[2].replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    }
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/** The sum of a metric's samples over all its labels (NaN-free; 0 when absent). */
export function total(samples: Sample[], name: string): number {
  let sum = 0;
  for (const sample of samples) if (sample.name === name && Number.isFinite(sample.value)) sum += sample.value;
  return sum;
}

export function find(samples: Sample[], name: string): Sample | undefined {
  return samples.find((sample) => sample.name === name);
}
