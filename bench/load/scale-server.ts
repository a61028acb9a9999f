/**
 * The server of the `scale` scenario: iii-stream built from the public API (the compiled
 * package, as the CLI runs it) on one adapter, which can also be filled through its
 * store's port while it serves. Filling a million groups over RPC would take longer
 * than the rest of the scenario; filling through `ItemStore.commit` in the serving
 * process puts the items where Sets would have put them (the memory adapter's items
 * live in this process, whose memory is what is measured).
 *
 *   node --expose-gc --import tsx bench/load/scale-server.ts '<ScaleServerConfig JSON>'
 *
 * Prints the CLI's "listening on" line, then takes one JSON request a line on stdin
 * (ServerRequest) and answers each with a `REPLY <json>` line (ServerReply). SIGUSR2
 * collects garbage too, for a load process that reads this server's memory and has no
 * stdin to write to. Stops on SIGTERM or when stdin closes.
 */
import { createInterface } from "node:readline";
import { loadBuiltPackage } from "./built-package.js";
import { fillThroughPort } from "./port-fill.js";
import type { ScaleServerConfig, ServerReply, ServerRequest } from "./scale-jobs.js";

const config = JSON.parse(process.argv[2] ?? "{}") as ScaleServerConfig;
const iii = await loadBuiltPackage();

const backend =
  config.adapter === "file"
    ? iii.openFileBackend({ dataDir: config.dataDir! })
    : config.adapter === "redis"
      ? await iii.connectRedisBackend({ url: config.redisUrl!, keyPrefix: config.keyPrefix })
      : iii.memoryBackend();
const server = iii.createStreamServer({ port: 0, host: "127.0.0.1", backend });
await server.start();
process.stdout.write(`iii-stream listening on ${server.url} (adapter: ${config.adapter})\n`);

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("start the server with --expose-gc");
  // Twice: the first collection's finalizers can free more for the second.
  gc();
  gc();
}
process.on("SIGUSR2", collectGarbage);

async function handle(request: ServerRequest): Promise<void> {
  const started = performance.now();
  try {
    if (request.op === "fill") await fillThroughPort(backend.items, request.plan);
    else collectGarbage();
    reply({ id: request.id, ok: true, ms: performance.now() - started });
  } catch (error) {
    reply({ id: request.id, ok: false, error: (error as Error).stack ?? String(error), ms: performance.now() - started });
  }
}

function reply(answer: ServerReply): void {
  process.stdout.write(`REPLY ${JSON.stringify(answer)}\n`);
}

let stopping: Promise<void> | undefined;
function stop(): Promise<void> {
  stopping ??= server.stop().then(() => process.exit(0));
  return stopping;
}
process.once("SIGTERM", () => void stop());
process.once("SIGINT", () => void stop());

// One request at a time, in order: a fill and the measurement after it must not overlap.
let queue = Promise.resolve();
const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (line.trim() === "") return;
  const request = JSON.parse(line) as ServerRequest;
  queue = queue.then(() => handle(request));
});
lines.on("close", () => void stop());
