/**
 * Cost of one group's size: Set and Get latency (one call at a time, each on an item
 * picked at random among the group's, Sets overwriting so the group keeps its size),
 * then full snapshots read through the Connect client (binary, HTTP/2) the way an
 * application reads them: Snapshot messages until the one whose `more` is false. Run by
 * the `scale` scenario (bench/suite/scenarios/scale.ts).
 */
import { fromJson, toBinary } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { StreamService, SubscribeResponseSchema, type SubscribeResponse } from "../../gen/iii/stream/v1/stream_pb.js";
import { cpuSeconds } from "../suite/proc-stats.js";
import { finish, readJob } from "./load-io.js";
import { itemName, itemValue } from "./port-fill.js";
import type { ItemsJob, ItemsResult } from "./scale-jobs.js";

const job = readJob<ItemsJob>();
const sessionManager = new Http2SessionManager(job.url);
const client = createClient(StreamService, createConnectTransport({ baseUrl: job.url, httpVersion: "2", useBinaryFormat: true, sessionManager }));
const key = { streamName: job.streamName, groupId: job.groupId };
const pick = () => Math.floor(Math.random() * job.items);
let errors = 0;

/** Latency of `count` calls made one after the other, in ms. */
async function timeCalls(count: number, call: (index: number) => Promise<unknown>): Promise<number[]> {
  const latencies: number[] = [];
  for (let k = 0; k < count; k++) {
    const started = performance.now();
    try {
      await call(k);
      latencies.push(performance.now() - started);
    } catch {
      errors++;
    }
  }
  return latencies;
}

/** Exact percentile of a few thousand samples (a histogram's 0.1 ms buckets are too coarse for sub-millisecond Gets). */
function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

const set = (k: number) => {
  const item = pick();
  return client.set({ ...key, itemId: itemName(item), data: fromJson(ValueSchema, { ...itemValue(item), k }) });
};
const get = () => client.get({ ...key, itemId: itemName(pick()) });

await timeCalls(job.warmupCalls, set);
const sets = await timeCalls(job.calls, set);
await timeCalls(job.warmupCalls, get);
const gets = await timeCalls(job.calls, get);

/** One full snapshot: its time, and its messages (encoded after the clock stopped). */
async function readSnapshot(): Promise<{ ms: number; messages: SubscribeResponse[] }> {
  const abort = new AbortController();
  const messages: SubscribeResponse[] = [];
  const started = performance.now();
  let ms = NaN;
  try {
    for await (const response of client.subscribe(key, { signal: abort.signal })) {
      if (response.message.case !== "snapshot") continue;
      messages.push(response);
      // `more` is absent on a server that sends the whole snapshot as one message.
      if (response.message.value.more !== true) {
        ms = performance.now() - started;
        break;
      }
    }
  } finally {
    abort.abort();
  }
  if (!Number.isFinite(ms)) throw new Error("the Subscribe stream ended before its snapshot did");
  return { ms, messages };
}

const snapshotMs: number[] = [];
const snapshotServerCpuMs: number[] = [];
let last: SubscribeResponse[] = [];
// The first snapshot of a fresh server runs Subscribe's code for the first time: not timed.
for (let s = -1; s < job.snapshots; s++) {
  try {
    const cpuBefore = cpuSeconds(job.serverPid) ?? NaN;
    const snapshot = await readSnapshot();
    if (s < 0) continue;
    snapshotServerCpuMs.push(((cpuSeconds(job.serverPid) ?? NaN) - cpuBefore) * 1000);
    snapshotMs.push(snapshot.ms);
    last = snapshot.messages;
  } catch {
    errors++;
  }
}
const snapshotItems = last.reduce((sum, m) => sum + (m.message.case === "snapshot" ? m.message.value.items.length : 0), 0);
const result: ItemsResult = {
  setP50Ms: percentile(sets, 50),
  setP99Ms: percentile(sets, 99),
  getP50Ms: percentile(gets, 50),
  getP99Ms: percentile(gets, 99),
  snapshotMs,
  snapshotServerCpuMs,
  snapshotBytes: last.reduce((sum, m) => sum + toBinary(SubscribeResponseSchema, m).length, 0),
  snapshotMessages: last.length,
  snapshotItems,
  errors,
};
sessionManager.abort();
await finish(result);
