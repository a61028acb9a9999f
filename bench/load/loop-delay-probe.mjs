/**
 * Preloaded into a server (`node --import`) by the soak: every SOAK_PROBE_INTERVAL_MS it
 * writes the event-loop delay of the last interval (p50, p99, max, in ms) and the
 * process's heap to SOAK_PROBE_FILE, so that the soak reads the server's own loop
 * without the server exposing anything for it.
 */
import { writeFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";

const file = process.env.SOAK_PROBE_FILE;
if (file) {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  const ms = (ns) => Math.round(ns / 1e4) / 100;
  setInterval(() => {
    const memory = process.memoryUsage();
    const sample = {
      at: Date.now(),
      loopDelayMs: { p50: ms(histogram.percentile(50)), p99: ms(histogram.percentile(99)), max: ms(histogram.max) },
      heapUsedBytes: memory.heapUsed,
      externalBytes: memory.external,
    };
    histogram.reset();
    writeFileSync(file, JSON.stringify(sample));
  }, Number(process.env.SOAK_PROBE_INTERVAL_MS) || 10_000).unref();
}
