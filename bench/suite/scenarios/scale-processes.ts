/**
 * The processes of the `scale` scenario: its server (bench/load/scale-server.ts, which
 * can be filled through its store's port while it serves), its load processes, and the
 * real CLI for the store-size rows. Pinned like every other scenario's: servers on core
 * 0, load on core 1 (see processes.ts).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { FillPlan, ScaleLoads, ScaleServerConfig, ServerReply } from "../../load/scale-jobs.js";
import { parseResult } from "../../load/load-io.js";
import { PINNING, PROJECT_ROOT, stopChild } from "../processes.js";

const SERVER_CORE = "0";
const LOAD_CORE = "1";
const SCALE_SERVER = fileURLToPath(new URL("../../load/scale-server.ts", import.meta.url));
const CLI = fileURLToPath(new URL("../../../bin/iii-stream.mjs", import.meta.url));
const loadFile = (name: string) => fileURLToPath(new URL(`../../load/${name}.ts`, import.meta.url));
const LISTENING = /listening on (http:\/\/\S+) \(/;
const START_TIMEOUT_MS = 60_000;
/** A fill of a million groups through the Redis adapter takes minutes on a slow machine; nothing takes longer. */
const REQUEST_TIMEOUT_MS = 15 * 60_000;

function pinnedSpawn(core: string, command: string[]): ChildProcess {
  const [file, args] = PINNING ? ["taskset", ["-c", core, ...command]] : [command[0], command.slice(1)];
  return spawn(file, args, { cwd: PROJECT_ROOT, stdio: ["pipe", "pipe", "pipe"] });
}

export interface ScaleServer {
  label: string;
  url: string;
  pid: number;
  /** Creates the plan's items through the store's port; resolves with the server's time for it. */
  fill(plan: FillPlan): Promise<number>;
  /** Two full garbage collections, so that memory read next is what the server retains. */
  collectGarbage(): Promise<void>;
  stop(): Promise<void>;
}

export async function startScaleServer(label: string, config: ScaleServerConfig): Promise<ScaleServer> {
  const child = pinnedSpawn(SERVER_CORE, [process.execPath, "--expose-gc", "--import", "tsx", SCALE_SERVER, JSON.stringify(config)]);
  const { url, exited, output, onLine } = await listeningUrl(label, child);
  let nextId = 0;
  const waiting = new Map<number, { resolve: (reply: ServerReply) => void; reject: (error: Error) => void }>();
  onLine((line) => {
    if (!line.startsWith("REPLY ")) return;
    const reply = JSON.parse(line.slice("REPLY ".length)) as ServerReply;
    waiting.get(reply.id)?.resolve(reply);
    waiting.delete(reply.id);
  });
  void exited.then(() => {
    for (const call of waiting.values()) call.reject(new Error(`${label} exited:\n${output().slice(-2000)}`));
    waiting.clear();
  });
  const request = async (body: { op: "fill"; plan: FillPlan } | { op: "gc" }): Promise<number> => {
    const id = nextId++;
    let timer: NodeJS.Timeout | undefined;
    const reply = await new Promise<ServerReply>((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      timer = setTimeout(() => reject(new Error(`${label}: ${body.op} took over ${REQUEST_TIMEOUT_MS} ms`)), REQUEST_TIMEOUT_MS);
      child.stdin!.write(`${JSON.stringify({ id, ...body })}\n`);
    }).finally(() => clearTimeout(timer));
    if (!reply.ok) throw new Error(`${label}: ${body.op} failed: ${reply.error}`);
    return reply.ms;
  };
  return {
    label,
    url,
    pid: child.pid!,
    fill: (plan) => request({ op: "fill", plan }),
    collectGarbage: async () => void (await request({ op: "gc" })),
    stop: () => stopChild(child, exited),
  };
}

export interface CliStart {
  url: string;
  pid: number;
  /** From the spawn to the line saying the server listens. */
  listeningMs: number;
  /** From the spawn to the first `GET /healthz` answered 200. */
  readyMs: number;
  stop(): Promise<void>;
}

/** How often /healthz is asked while the server is not ready yet. */
const READY_POLL_MS = 5;

/** The real CLI (bin/iii-stream.mjs, the compiled package), timed from its spawn until /healthz says ready. */
export async function startCliTimed(args: string[]): Promise<CliStart> {
  const started = performance.now();
  const child = pinnedSpawn(SERVER_CORE, [process.execPath, CLI, "--port", "0", ...args]);
  const { url, exited } = await listeningUrl("iii-stream", child);
  const listeningMs = performance.now() - started;
  const deadline = started + START_TIMEOUT_MS;
  for (;;) {
    const ok = await fetch(`${url}/healthz`).then((response) => response.ok, () => false);
    if (ok) break;
    if (performance.now() > deadline) {
      await stopChild(child, exited);
      throw new Error(`iii-stream listened but was not ready within ${START_TIMEOUT_MS} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
  }
  return { url, pid: child.pid!, listeningMs, readyMs: performance.now() - started, stop: () => stopChild(child, exited) };
}

async function listeningUrl(
  label: string,
  child: ChildProcess,
): Promise<{ url: string; exited: Promise<void>; output: () => string; onLine: (listener: (line: string) => void) => void }> {
  let output = "";
  let partial = "";
  const listeners: Array<(line: string) => void> = [];
  const keep = (text: string) => {
    output += text;
    // Only the tail is ever shown (errors); a long-running server must not hoard its output.
    if (output.length > 100_000) output = output.slice(-20_000);
  };
  child.stdout!.on("data", (chunk: Buffer) => {
    keep(chunk.toString());
    const lines = (partial + chunk.toString()).split("\n");
    partial = lines.pop()!;
    for (const line of lines) for (const listener of listeners) listener(line);
  });
  child.stderr!.on("data", (chunk: Buffer) => keep(chunk.toString()));
  const tail = () => output.slice(-20_000);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} did not start in ${START_TIMEOUT_MS} ms:\n${tail()}`)), START_TIMEOUT_MS);
    listeners.push((line) => {
      const match = LISTENING.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${label} exited before listening:\n${tail()}`));
    });
  });
  return { url, exited, output: tail, onLine: (listener) => listeners.push(listener) };
}


/**
 * Runs one of the scale scenario's load processes on the load core with its job and
 * returns its result; killed when it overruns the job's deadline by a few seconds.
 */
export async function runScaleLoad<Name extends keyof ScaleLoads>(name: Name, job: ScaleLoads[Name]["job"]): Promise<ScaleLoads[Name]["result"]> {
  const child = pinnedSpawn(LOAD_CORE, [process.execPath, "--import", "tsx", loadFile(name), JSON.stringify(job)]);
  child.stdin!.end();
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const killer = setTimeout(() => child.kill("SIGKILL"), job.deadlineMs + 5000);
  const code = await new Promise<number | null>((resolve) => child.once("exit", (exitCode) => resolve(exitCode)));
  clearTimeout(killer);
  const result = parseResult(stdout);
  if (code !== 0 || result === undefined) throw new Error(`load ${name} failed (exit ${code}):\n${stderr.slice(-2000)}`);
  return result as ScaleLoads[Name]["result"];
}
