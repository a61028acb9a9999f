import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { join } from "node:path";
import type { UnaryProtocol } from "../../load/jobs.js";
import { startOurs, type RunningServer } from "../processes.js";
import type { Scenario } from "../scenario.js";
import { compareUnary, measureUnary, targetOf, UNARY_MEASURE_MS, UNARY_WARMUP_MS, unaryTable } from "./unary-shape.js";

const PROTOCOLS: UnaryProtocol[] = ["connect-binary-h2"];
const CONCURRENCIES = [16, 64];
/** Triggers on the stream the unary load writes ("bench"), each firing once per Set. */
const TRIGGERS = 3;
const WITH = `${TRIGGERS} triggers`;
const WITHOUT = "0 triggers";

/**
 * A FunctionService that answers every call with `{"result": null}` at once, served by
 * the runner's own process: it is not measured, and it costs the servers only the calls.
 */
function startFunctionServer(): Promise<{ url: string; calls: () => number; stop: () => Promise<void> }> {
  let calls = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      calls++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"result":null}');
    });
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        calls: () => calls,
        stop: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}

export const triggersScenario: Scenario = {
  name: "triggers",
  title: `What stream triggers cost writers: Set calls/s with ${TRIGGERS} remote triggers on the written stream vs none`,
  async run(options) {
    const dir = mkdtempSync(join(os.tmpdir(), "iii-stream-bench-triggers-"));
    const functions = await startFunctionServer();
    const servers: RunningServer[] = [];
    try {
      const config = join(dir, "config.yaml");
      const triggers = Array.from(
        { length: TRIGGERS },
        (_, i) => `  - trigger_id: bench-${i}\n    type: stream\n    function_id: bench::noop\n    config:\n      stream_name: bench\n`,
      ).join("");
      writeFileSync(config, `functions:\n  - function_id: bench::noop\n    url: ${functions.url}\ntriggers:\n${triggers}`);
      const withTriggers = await startOurs(`iii-stream (${WITH})`, ["--adapter", "memory", "--config", config]);
      servers.push(withTriggers);
      const without = await startOurs(`iii-stream (${WITHOUT})`, ["--adapter", "memory"]);
      servers.push(without);

      const runs = await measureUnary([targetOf(WITH, [withTriggers]), targetOf(WITHOUT, [without])], PROTOCOLS, CONCURRENCIES, options);
      const comparisons = compareUnary(runs, WITH, WITHOUT);
      return {
        tables: [unaryTable(`Set, memory adapter, with ${TRIGGERS} remote stream triggers vs none (ratio = with / without)`, comparisons, WITH, WITHOUT)],
        charts: [],
        targets: [],
        notes: [
          `The function server answered ${functions.calls()} trigger calls. Calls are made after the reply, so calls/s shows what they cost the writer's process; calls dropped when more than the dispatcher's limit are pending are not retried.`,
        ],
        config: { protocols: PROTOCOLS, concurrencies: CONCURRENCIES, triggers: TRIGGERS, warmupMs: UNARY_WARMUP_MS, measureMs: UNARY_MEASURE_MS, runs: options.runs },
        raw: runs,
      };
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
      await functions.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
