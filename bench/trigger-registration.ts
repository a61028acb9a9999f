/**
 * What one worker connection costs the server when it registers many `stream` triggers
 * and then disconnects: wall time of the registrations (until the last reply), wall
 * time of their removal on disconnect, and the longest the event loop was blocked.
 * The per-connection trigger limit is raised so that the registrations are accepted.
 *
 *   npx tsx bench/trigger-registration.ts [N ...]     (default 2000 4000 8000)
 *
 * Server and client share this process, so the event-loop figures include the client's
 * own (small, linear) work of sending N frames and reading N replies.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { WebSocket } from "ws";
import { createStreamServer } from "../src/index.js";
import { silentLog } from "../src/index.js";

const sizes = process.argv.slice(2).map(Number).filter((n) => Number.isSafeInteger(n) && n > 0);

async function measure(n: number): Promise<void> {
  const server = createStreamServer({
    port: 0,
    shutdownGraceMs: 200,
    webSocket: { maxTriggersPerConnection: n, maxFunctionsPerConnection: n },
    log: silentLog,
  });
  await server.start();
  const ws = new WebSocket(server.url.replace(/^http/, "ws") + "/worker");
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  let replies = 0;
  let refused = 0;
  const allReplied = new Promise<void>((resolve) => {
    ws.on("message", (data) => {
      const message = JSON.parse(String(data)) as { type: string; error?: unknown };
      if (message.type !== "triggerregistrationresult") return;
      replies++;
      if (message.error) refused++;
      if (replies === n) resolve();
    });
  });

  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const started = performance.now();
  ws.send(JSON.stringify({ type: "registerfunction", id: "bench::on-change" }));
  for (let i = 0; i < n; i++) {
    // In slices, so that the client's own sending does not count as the server blocking.
    if (i % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
    ws.send(
      JSON.stringify({
        type: "registertrigger",
        id: `t${i}`,
        trigger_type: "stream",
        function_id: "bench::on-change",
        config: { stream_name: `bench-${i % 50}` },
      }),
    );
  }
  await allReplied;
  const registerMs = performance.now() - started;
  const registered = server.stats().triggers;
  histogram.disable();
  const registerBlockMs = histogram.max / 1e6;

  const removal = monitorEventLoopDelay({ resolution: 1 });
  removal.enable();
  const closing = performance.now();
  ws.close();
  // The server removes a worker's registrations in its close handler, in the turn it sees the close.
  while (server.webSockets.size > 0) await new Promise((resolve) => setImmediate(resolve));
  const removeMs = performance.now() - closing;
  removal.disable();
  const removeBlockMs = removal.max / 1e6;
  const left = server.stats().triggers;
  await server.stop();

  console.log(
    [
      `N=${String(n).padStart(6)}`,
      `register ${registerMs.toFixed(0).padStart(6)} ms`,
      `(longest block ${registerBlockMs.toFixed(0).padStart(5)} ms)`,
      `remove ${removeMs.toFixed(0).padStart(6)} ms`,
      `(longest block ${removeBlockMs.toFixed(0).padStart(5)} ms)`,
      `registered ${registered}, refused ${refused}, left ${left}`,
    ].join("  "),
  );
}

for (const n of sizes.length > 0 ? sizes : [2000, 4000, 8000]) await measure(n);
