/**
 * Unary load: Set calls from N concurrent callers, each issuing its next call when the
 * last one returned, for each case of the job in turn. Run by the suite
 * (bench/suite/scenarios/unary.ts).
 */
import { fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { LatencyHistogram } from "../suite/stats.js";
import { openCpuWindow } from "./cpu-window.js";
import type { UnaryCase, UnaryFigures, UnaryJob } from "./jobs.js";
import { finish, readJob, sleep } from "./load-io.js";
import { unaryClient } from "./unary-clients.js";

/** Items the callers cycle through: a realistic store, not one hot key. */
const ITEMS = 1000;
/**
 * Before the first case, every target is called over every protocol for this long,
 * unmeasured: a fresh load process (and, in the first run, a fresh server) runs cold
 * code, which would otherwise penalise whichever case comes first.
 */
const PROCESS_WARMUP_MS = 700;

const job = readJob<UnaryJob>();
const data = fromJson(ValueSchema, { name: "bench", count: 1, tags: ["a", "b"] });

async function measure(unaryCase: UnaryCase, warmupMs = job.warmupMs, measureMs = job.measureMs): Promise<UnaryFigures> {
  const { target, protocol, concurrency } = unaryCase;
  const clients = target.urls.map((url) => unaryClient(protocol, url, Math.ceil(concurrency / target.urls.length)));
  const latency = new LatencyHistogram();
  let measuring = false;
  let stopped = false;
  let errors = 0;
  let next = 0;
  const caller = async (index: number) => {
    const { client } = clients[index % clients.length];
    while (!stopped) {
      const n = next++;
      const started = performance.now();
      try {
        await client.set({ streamName: "bench", groupId: "unary", itemId: `item-${n % ITEMS}`, data });
        if (measuring) latency.add(performance.now() - started);
      } catch {
        if (measuring) errors++;
      }
    }
  };
  const callers = Array.from({ length: concurrency }, (_, index) => caller(index));
  await sleep(warmupMs);
  measuring = true;
  const window = openCpuWindow(target.pids);
  await sleep(measureMs);
  measuring = false;
  const calls = latency.count;
  const cpu = window();
  stopped = true;
  await Promise.all(callers);
  for (const client of clients) client.close();
  return {
    system: target.system,
    protocol,
    concurrency,
    callsPerSecond: calls / cpu.wallSeconds,
    p50Ms: latency.percentile(50),
    p99Ms: latency.percentile(99),
    serverCpuMicrosPerCall: (cpu.serverSeconds / Math.max(1, calls)) * 1e6,
    serverCores: cpu.serverSeconds / cpu.wallSeconds,
    loadCores: cpu.loadSeconds / cpu.wallSeconds,
    errors,
  };
}

const warmups = new Map(job.cases.map((c) => [`${c.target.system}/${c.protocol}`, c]));
const concurrency = Math.max(...job.cases.map((c) => c.concurrency));
for (const warmup of warmups.values()) await measure({ ...warmup, concurrency }, 0, PROCESS_WARMUP_MS);
const figures: UnaryFigures[] = [];
for (const unaryCase of job.cases) figures.push(await measure(unaryCase));
await finish(figures);
