import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import os from "node:os";
import { fileURLToPath } from "node:url";
import type { Loads } from "../load/jobs.js";
import { parseResult } from "../load/load-io.js";
import { cpuSeconds } from "./proc-stats.js";

export const PROJECT_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const OURS = fileURLToPath(new URL("../../bin/iii-stream.mjs", import.meta.url));
const peerFile = (name: string) => fileURLToPath(new URL(`../peers/${name}.ts`, import.meta.url));
const loadFile = (name: string) => fileURLToPath(new URL(`../load/${name}.ts`, import.meta.url));

/**
 * Servers run on core 0 and load generators on core 1 (`taskset`): on two cores the
 * subscribers cost about as much CPU as the server, and unpinned they would steal the
 * server's core at random. Without taskset or a second core nothing is pinned, and the
 * results say so.
 */
export const PINNING = detectPinning();
const SERVER_CORE = "0";
export const LOAD_CORE = "1";

function detectPinning(): boolean {
  if (os.cpus().length < 2) return false;
  return spawnSync("taskset", ["-c", "0", "true"]).status === 0;
}

function pinned(core: string, command: string[]): [string, string[]] {
  return PINNING ? ["taskset", ["-c", core, ...command]] : [command[0], command.slice(1)];
}

export interface RunningServer {
  label: string;
  url: string;
  pid: number;
  output(): string;
  stop(): Promise<void>;
}

const LISTENING = /listening on (http:\/\/\S+) \(/;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

let profileDirectory: string | undefined;

/** From now on our servers write a `node --cpu-prof` profile into `directory` when they stop. */
export function profileOurServers(directory: string): void {
  profileDirectory = directory;
}

/** iii-stream itself: the real CLI, as `npm start` runs it; `nodeArgs` go to node before it (a preloaded probe). */
export function startOurs(label: string, args: string[], nodeArgs: string[] = []): Promise<RunningServer> {
  const profiling = profileDirectory ? ["--cpu-prof", "--cpu-prof-dir", profileDirectory] : [];
  return startServer(label, [process.execPath, ...profiling, ...nodeArgs, OURS, "--port", "0", ...args]);
}

/** A peer from bench/peers, through the same TypeScript loader our CLI uses. */
export function startPeer(label: string, peer: "socket-io-server" | "ws-broadcast-server" | "http2-broadcast-server" | "noop-connect-server"): Promise<RunningServer> {
  return startServer(label, [process.execPath, "--import", "tsx", peerFile(peer), "--port", "0"]);
}

async function startServer(label: string, command: string[]): Promise<RunningServer> {
  const [file, args] = pinned(SERVER_CORE, command);
  const child = spawn(file, args, { cwd: PROJECT_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} did not start in ${START_TIMEOUT_MS} ms:\n${output}`)), START_TIMEOUT_MS);
    const check = () => {
      const match = LISTENING.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on("data", check);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${label} exited before listening:\n${output}`));
    });
  });
  return { label, url, pid: child.pid!, output: () => output, stop: () => stopChild(child, exited) };
}

/** Stops a child with SIGTERM, and SIGKILL when it has not exited STOP_TIMEOUT_MS later. */
export async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/**
 * Runs a load generator from bench/load in its own process on the load core, with the
 * job as its argument, and returns its result. The process is killed when it overruns
 * the job's deadline by more than a few seconds.
 */
export async function runLoad<Name extends keyof Loads>(name: Name, job: Loads[Name]["job"]): Promise<Loads[Name]["result"]> {
  const [file, args] = pinned(LOAD_CORE, [process.execPath, "--import", "tsx", loadFile(name), JSON.stringify(job)]);
  const child = spawn(file, args, { cwd: PROJECT_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const killer = setTimeout(() => child.kill("SIGKILL"), job.deadlineMs + 5000);
  const code = await new Promise<number | null>((resolve) => child.once("exit", (exitCode) => resolve(exitCode)));
  clearTimeout(killer);
  const result = parseResult(stdout);
  if (code !== 0 || result === undefined) {
    throw new Error(`load ${name} failed (exit ${code}):\n${stderr.slice(-2000)}`);
  }
  return result as Loads[Name]["result"];
}

/**
 * Waits until the servers stop burning CPU (work left from the previous load, such as
 * closing a thousand sockets), so that it is not billed to the next measurement.
 * Bounded: gives up after `maxMs`.
 */
export async function waitForQuiet(pids: number[], maxMs = 5000): Promise<void> {
  const deadline = Date.now() + maxMs;
  const busy = () => pids.reduce((sum, pid) => sum + (cpuSeconds(pid) ?? 0), 0);
  let before = busy();
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const now = busy();
    // Under 8% of a core over the last quarter second counts as quiet.
    if (now - before <= 0.02) return;
    before = now;
  }
}
