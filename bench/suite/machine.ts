import { readFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { PINNING, PROJECT_ROOT } from "./processes.js";

/** Packages whose versions the results record: the peers, their clients and our stack. */
const PACKAGES = ["socket.io", "socket.io-client", "ws", "@connectrpc/connect", "@connectrpc/connect-node", "@bufbuild/protobuf", "better-sqlite3", "ioredis", "tsx"];

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  iiiStream: string;
  /** The commit of the tree that was measured, read from .git (uncommitted changes are not reflected). */
  commit: string | undefined;
  packages: Record<string, string>;
  pinning: string;
}

export function machineInfo(): MachineInfo {
  return {
    cpuModel: os.cpus()[0]?.model ?? "unknown",
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    iiiStream: packageVersion(PROJECT_ROOT),
    commit: headCommit(),
    packages: Object.fromEntries(PACKAGES.map((name) => [name, packageVersion(join(PROJECT_ROOT, "node_modules", name))])),
    pinning: PINNING ? "servers on core 0, load generators on core 1 (taskset)" : "none (taskset or a second core missing)",
  };
}

export function loadAverage(): number[] {
  return os.loadavg().map((n) => Math.round(n * 100) / 100);
}

function packageVersion(directory: string): string {
  try {
    return (JSON.parse(readFileSync(join(directory, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "not installed";
  }
}

function headCommit(): string | undefined {
  try {
    const head = readFileSync(join(PROJECT_ROOT, ".git", "HEAD"), "utf8").trim();
    if (!head.startsWith("ref: ")) return head;
    const ref = head.slice(5);
    try {
      return readFileSync(join(PROJECT_ROOT, ".git", ref), "utf8").trim();
    } catch {
      const packed = readFileSync(join(PROJECT_ROOT, ".git", "packed-refs"), "utf8");
      return packed.split("\n").find((line) => line.endsWith(` ${ref}`))?.split(" ")[0];
    }
  } catch {
    return undefined;
  }
}
