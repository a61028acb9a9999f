import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { PROJECT_ROOT } from "./processes.js";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface Frame {
  frame: string;
  /** Share of the time the thread was busy (idle excluded). */
  selfPercent: number;
}

export interface ProfileSummary {
  busySeconds: number;
  frames: Frame[];
}

const IDLE = "(idle)";

/**
 * The functions that used the most CPU themselves (self time) in a `node --cpu-prof`
 * profile, grouped by function and source line: where a server's time goes.
 */
export function topFrames(path: string, count = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
  const frameOf = new Map<number, string>();
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url.startsWith("file://") ? relative(PROJECT_ROOT, new URL(url).pathname) : url;
    frameOf.set(node.id, `${functionName || "(anonymous)"} ${file ? `${file}:${lineNumber + 1}` : ""}`.trim());
  }
  const self = new Map<string, number>();
  let busy = 0;
  profile.samples.forEach((id, index) => {
    const micros = profile.timeDeltas[index] ?? 0;
    const frame = frameOf.get(id) ?? "?";
    if (frame === IDLE) return;
    self.set(frame, (self.get(frame) ?? 0) + micros);
    busy += micros;
  });
  const frames = [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([frame, micros]) => ({ frame, selfPercent: (micros / Math.max(1, busy)) * 100 }));
  return { busySeconds: busy / 1e6, frames };
}

/** The profiles a directory holds, oldest first (Node names them by date and pid). */
export function profilesIn(directory: string): string[] {
  try {
    return readdirSync(directory)
      .filter((file) => file.endsWith(".cpuprofile"))
      .sort()
      .map((file) => join(directory, file));
  } catch {
    return [];
  }
}
