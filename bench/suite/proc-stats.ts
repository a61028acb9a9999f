import { readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat times: 100 on every Linux this runs on (`getconf CLK_TCK`). */
const TICKS_PER_SECOND = 100;

/** utime + stime of a process, in seconds; undefined when /proc has no such process. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    // The command name is in parentheses and may contain spaces: count fields after it.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** Summed CPU seconds of several processes (the instances of one system under test). */
export function totalCpuSeconds(pids: number[]): number | undefined {
  let total = 0;
  for (const pid of pids) {
    const seconds = cpuSeconds(pid);
    if (seconds === undefined) return undefined;
    total += seconds;
  }
  return total;
}

/** Resident set size of a process in bytes (VmRSS), undefined when /proc has no such process. */
export function rssBytes(pid: number): number | undefined {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
