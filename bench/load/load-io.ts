/**
 * How a load generator talks to the suite: its job arrives as JSON in argv[2], its
 * result leaves as one `RESULT <json>` line on stdout, and a watchdog ends it when the
 * job's deadline passes, so that no load process outlives its step.
 */
const RESULT_PREFIX = "RESULT ";

export interface LoadJob {
  /** The process exits with an error after this long, whatever it is doing. */
  deadlineMs: number;
}

export function readJob<T extends LoadJob>(): T {
  const job = JSON.parse(process.argv[2] ?? "{}") as T;
  setTimeout(() => {
    process.stderr.write(`load ${process.argv[1]}: deadline of ${job.deadlineMs} ms passed\n`);
    process.exit(3);
  }, job.deadlineMs).unref();
  return job;
}

/** Prints the result and exits: open connections need no orderly close in a process that ends. */
export async function finish(result: unknown): Promise<never> {
  await new Promise<void>((resolve) => process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`, () => resolve()));
  process.exit(0);
}

/** The result line in a load process's stdout, or undefined. */
export function parseResult(stdout: string): unknown {
  const line = stdout.split("\n").find((l) => l.startsWith(RESULT_PREFIX));
  return line === undefined ? undefined : JSON.parse(line.slice(RESULT_PREFIX.length));
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `open` for `count` items with at most `parallel` in flight: connecting thousands
 * of sockets at once overflows the server's accept backlog and measures that instead.
 */
export async function inBatches<T>(count: number, parallel: number, open: (index: number) => Promise<T>): Promise<PromiseSettledResult<T>[]> {
  const results: PromiseSettledResult<T>[] = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next++;
      try {
        results[index] = { status: "fulfilled", value: await open(index) };
      } catch (reason) {
        results[index] = { status: "rejected", reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
  return results;
}
