/**
 * Samples a server's resident memory on a timer, keeps the highest reading, and kills
 * the server when it passes a guard: the loads that measure memory run old servers
 * that may grow without bound, on a machine other work shares.
 */
import { rssBytes } from "../suite/proc-stats.js";
import { median } from "../suite/stats.js";
import { sleep } from "./load-io.js";
import type { RssSeries } from "./memory-jobs.js";

export class RssWatch {
  readonly series: RssSeries;
  private readonly started = performance.now();
  private readonly timer: NodeJS.Timeout;
  private lastPointMs = -Infinity;

  constructor(
    private readonly pid: number,
    sampleMs: number,
    /** Readings are kept this far apart, so that long loads do not swell the results; the peak comes from every reading. */
    private readonly pointMs: number,
    private readonly guardBytes: number,
  ) {
    this.series = { sampleMs, pointMs, points: [], peakBytes: 0, peakAtMs: 0, guardTripped: false };
    this.sample();
    this.timer = setInterval(() => this.sample(), sampleMs);
  }

  /** Ms since the series began: for marking phases on it. */
  elapsedMs(): number {
    return Math.round(performance.now() - this.started);
  }

  /** Takes a reading now; `keep` keeps it as a point whenever it comes (the last one). */
  sample(keep = false): number {
    const bytes = rssBytes(this.pid);
    if (bytes === undefined) return NaN;
    const ms = this.elapsedMs();
    if (keep || ms - this.lastPointMs >= this.pointMs) {
      this.series.points.push([ms, bytes]);
      this.lastPointMs = ms;
    }
    if (bytes > this.series.peakBytes) {
      this.series.peakBytes = bytes;
      this.series.peakAtMs = ms;
    }
    if (bytes > this.guardBytes && !this.series.guardTripped) {
      this.series.guardTripped = true;
      process.stderr.write(`server ${this.pid} passed the memory guard (${bytes} > ${this.guardBytes} bytes): killed\n`);
      try {
        process.kill(this.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    return bytes;
  }

  stop(): RssSeries {
    clearInterval(this.timer);
    this.sample(true);
    return this.series;
  }
}

/** Median of a few readings a short gap apart: one reading may land in a garbage collection. */
export async function settledRss(pid: number, readings = 5, gapMs = 200): Promise<number> {
  const values: number[] = [];
  for (let r = 0; r < readings; r++) {
    values.push(rssBytes(pid) ?? NaN);
    if (r < readings - 1) await sleep(gapMs);
  }
  return median(values);
}
