/**
 * Hot-item load: concurrent callers incrementing one counter with Update, then a read
 * of the counter, which must equal the number of acknowledged Updates. Run by the
 * suite (bench/suite/scenarios/hot-item.ts).
 */
import { create, fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { UpdateOpSchema } from "../../gen/iii/stream/v1/stream_pb.js";
import { LatencyHistogram } from "../suite/stats.js";
import { openCpuWindow } from "./cpu-window.js";
import type { HotItemJob, HotItemResult } from "./jobs.js";
import { finish, readJob, sleep } from "./load-io.js";
import { unaryClient } from "./unary-clients.js";

const job = readJob<HotItemJob>();
const clients = job.target.urls.map((url) => unaryClient("connect-binary-h2", url, job.callers));
const key = { streamName: "bench", groupId: job.groupId, itemId: "counter" };
const increment = [create(UpdateOpSchema, { op: { case: "increment", value: { path: ["n"], by: 1n } } })];

await clients[0].client.set({ ...key, data: fromJson(ValueSchema, { n: 0 }) });
const latency = new LatencyHistogram();
let acknowledged = 0;
let errors = 0;
let measuring = false;
let stopped = false;
const caller = async (index: number) => {
  const { client } = clients[index % clients.length];
  while (!stopped) {
    const started = performance.now();
    try {
      await client.update({ ...key, ops: increment });
      acknowledged++;
      if (measuring) latency.add(performance.now() - started);
    } catch {
      errors++;
    }
  }
};
const callers = Array.from({ length: job.callers }, (_, index) => caller(index));
await sleep(job.warmupMs);
measuring = true;
const window = openCpuWindow(job.target.pids);
await sleep(job.measureMs);
measuring = false;
const calls = latency.count;
const cpu = window();
stopped = true;
await Promise.all(callers);

const item = (await clients[0].client.get(key)).item;
const n = item?.data?.kind.case === "structValue" ? item.data.kind.value.fields.n?.kind : undefined;
const result: HotItemResult = {
  callsPerSecond: calls / cpu.wallSeconds,
  p50Ms: latency.percentile(50),
  p99Ms: latency.percentile(99),
  serverCpuMicrosPerCall: (cpu.serverSeconds / Math.max(1, calls)) * 1e6,
  acknowledged,
  errors,
  finalValue: n?.case === "numberValue" ? n.value : NaN,
};
for (const client of clients) client.close();
await finish(result);
