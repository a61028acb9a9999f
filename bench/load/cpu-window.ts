import { totalCpuSeconds } from "../suite/proc-stats.js";

/**
 * A load process using this share of its core or more is saturated: what it measures
 * from then on is its own limit, not the server's.
 */
export const LOAD_SATURATED_CORES = 0.9;

export interface CpuFigures {
  wallSeconds: number;
  /** CPU seconds the server processes used over the window; NaN without /proc. */
  serverSeconds: number;
  /** CPU seconds this load process used over the window. */
  loadSeconds: number;
}

/**
 * CPU of the servers (from /proc/<pid>/stat) and of this load process over a window.
 * The servers' CPU per delivered message is the steady figure on a shared machine:
 * it hardly moves when other work steals wall-clock time.
 */
export function openCpuWindow(serverPids: number[]): () => CpuFigures {
  const serverBefore = totalCpuSeconds(serverPids);
  const loadBefore = process.cpuUsage();
  const started = performance.now();
  return () => {
    const serverAfter = totalCpuSeconds(serverPids);
    const load = process.cpuUsage(loadBefore);
    return {
      wallSeconds: (performance.now() - started) / 1000,
      serverSeconds: serverBefore === undefined || serverAfter === undefined ? NaN : serverAfter - serverBefore,
      loadSeconds: (load.user + load.system) / 1e6,
    };
  };
}
