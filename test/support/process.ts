import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export const PROJECT_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = fileURLToPath(new URL("../../bin/iii-stream.mjs", import.meta.url));

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  /** Standard output alone (the log lines) and standard error alone. */
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  exited: Promise<number | string>;
}

/** What the server prints once it listens; the first group is its URL. */
export const LISTENING = /listening on (https?:\/\/\S+) \(/;

/** Runs the real `iii-stream` binary and waits until it says where it listens. */
export async function spawnServer(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 20_000,
  cwd = PROJECT_ROOT,
): Promise<ServerProcess> {
  const run = runCli(args, env, cwd);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in ${timeoutMs} ms:\n${run.output()}`)), timeoutMs);
    const check = () => {
      const match = LISTENING.exec(run.output());
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    run.child.stdout?.on("data", check);
    void run.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before listening:\n${run.output()}`));
    });
  });
  return { ...run, url };
}

/**
 * Runs the binary to completion or until killed; collects stdout and stderr together.
 * `cwd` is where relative paths such as the default `./data` land.
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, cwd = PROJECT_ROOT): Omit<ServerProcess, "url"> {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  let out = "";
  let err = "";
  child.stdout.on("data", (chunk: Buffer) => {
    text += chunk.toString();
    out += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    text += chunk.toString();
    err += chunk.toString();
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")),
  );
  return { child, output: () => text, stdout: () => out, stderr: () => err, exited };
}
