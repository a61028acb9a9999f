import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { PROJECT_ROOT } from "./process.js";

/** A long-running command in bash, as a reader would leave it running in a terminal. */
export interface RunningCommand {
  child: ChildProcess;
  /** stdout and stderr so far, interleaved as they came. */
  output(): string;
  /** Resolves with the exit code (or the signal's name) once bash has exited. */
  exited: Promise<number | string>;
  /** Resolves with the first match of `pattern` in the output, waiting for it if need be. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /**
   * Signals the process that was started (as `kill $!` would), waits for it to exit, then kills
   * whatever it left of its process group. Resolves with its exit code or signal.
   */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

export interface ShellOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** `bash -x`: the trace shows every command with its variables expanded, on stderr. */
  trace?: boolean;
}

export function startCommand(script: string, options: ShellOptions = {}): RunningCommand {
  const child = spawn("bash", [...(options.trace ? ["-x"] : []), "-c", script], {
    cwd: options.cwd ?? PROJECT_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group, so that stop() reaches what bash started (npm, tsx, node).
    detached: true,
  });
  let text = "";
  const wakers = new Set<() => void>();
  const append = (chunk: Buffer) => {
    text += chunk.toString();
    for (const wake of [...wakers]) wake();
  };
  child.stdout!.on("data", append);
  child.stderr!.on("data", append);
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")));
  let running = true;
  void exited.then(() => {
    running = false;
    for (const wake of [...wakers]) wake();
  });
  return {
    child,
    exited,
    output: () => text,
    waitFor: (pattern, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(text);
          if (match || !running) {
            clearTimeout(timer);
            wakers.delete(check);
            if (match) resolve(match);
            else reject(new Error(`exited before printing ${pattern}:\n${text}`));
          }
        };
        const timer = setTimeout(() => {
          wakers.delete(check);
          reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${text}`));
        }, timeoutMs);
        wakers.add(check);
        check();
      }),
    stop: async (signal = "SIGTERM") => {
      if (running) child.kill(signal);
      const timeout = new Promise<"still running">((resolve) => setTimeout(() => resolve("still running"), 15_000).unref());
      const outcome = await Promise.race([exited, timeout]);
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // The group is gone already.
      }
      return outcome === "still running" ? exited : outcome;
    },
  };
}

/** Runs a script to its end; rejects with its output when it exits non-zero. */
export function runScript(script: string, options: ShellOptions = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      "bash",
      [...(options.trace ? ["-x"] : []), "-euo", "pipefail", "-c", script],
      { cwd: options.cwd ?? PROJECT_ROOT, env: { ...process.env, ...options.env }, timeout: 60_000 },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stdout}\n${stderr}`)) : resolve({ stdout, stderr })),
    );
  });
}

/** A port nobody listens on at the moment of asking. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
