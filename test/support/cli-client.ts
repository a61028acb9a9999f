import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const BIN = fileURLToPath(new URL("../../bin/iii-stream.mjs", import.meta.url));

export interface CliResult {
  /** The exit code, or the signal's name when a signal ended it. */
  code: number | string;
  stdout: string;
  stderr: string;
}

/**
 * Runs the built `iii-stream` binary as a client command to completion, with `input` on its
 * standard input, and keeps its two outputs apart. The caller's III_STREAM_URL and
 * III_STREAM_API_KEY are not inherited: each test says what it connects to.
 */
export function iii(args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  for (const name of ["III_STREAM_URL", "III_STREAM_API_KEY"]) if (options.env?.[name] === undefined) delete env[name];
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.on("error", () => undefined); // a command that never reads its input may exit first
  child.stdin.end(options.input ?? "");
  return new Promise((resolve) => child.once("close", (code, signal) => resolve({ code: code ?? signal ?? "unknown", stdout, stderr })));
}

/** Standard output as the JSON values of its lines. */
export function jsonLines(stdout: string): unknown[] {
  return stdout
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as unknown);
}

export { BIN };

/** A running `iii-stream watch` whose standard output is read line by line as it comes. */
export interface WatchProcess {
  child: ChildProcess;
  /** Every JSON line printed so far. */
  lines: Array<Record<string, unknown>>;
  stderr(): string;
  /** Resolves once `count` lines have been printed; rejects if the watch exits first. */
  untilLines(count: number): Promise<void>;
  exited: Promise<number | string>;
}

export function startWatch(args: string[], env: NodeJS.ProcessEnv = {}): WatchProcess {
  const merged: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const name of ["III_STREAM_URL", "III_STREAM_API_KEY"]) if (env[name] === undefined) delete merged[name];
  const child = spawn(process.execPath, [BIN, "watch", ...args], { env: merged, stdio: ["ignore", "pipe", "pipe"] });
  const lines: Array<Record<string, unknown>> = [];
  let partial = "";
  let stderr = "";
  const waiters = new Set<() => void>();
  child.stdout.on("data", (chunk: Buffer) => {
    partial += chunk.toString();
    const complete = partial.split("\n");
    partial = complete.pop()!;
    for (const line of complete) lines.push(JSON.parse(line) as Record<string, unknown>);
    for (const waiter of waiters) waiter();
  });
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | string>((resolve) => child.once("close", (code, signal) => resolve(code ?? signal ?? "unknown")));
  return {
    child,
    lines,
    stderr: () => stderr,
    exited,
    untilLines: (count) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (lines.length < count) return;
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
        check();
        void exited.then((code) => {
          if (lines.length < count) reject(new Error(`watch exited (${code}) after ${lines.length} of ${count} lines:\n${stderr}`));
        });
      }),
  };
}
