/**
 * Figures of the durable file adapter (SQLite), measured through the real server in
 * a child process:
 *   (a) acknowledged Set calls/s and latency with 16 concurrent callers (Connect,
 *       binary, one HTTP/2 connection): memory adapter, file adapter (every reply
 *       after its fsync), file adapter in relaxed mode (fsync every second);
 *   (b) a store of 1,000,000 items in 1,000 groups: time from spawn to "listening",
 *       resident memory then and after reading it, and the cost of an integrity check
 *       that start-up deliberately skips.
 * This process is the clients and shares the machine's cores with the server. Building
 * the large store takes about a minute; `--items N` makes it smaller.
 *
 *   npx tsx bench/durable.ts [--items 1000000] [--groups 1000] [--seconds 5]
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import Database from "better-sqlite3";
import { STORE_FILE_NAME } from "../src/adapters/file/open-store.js";
import { FileStore } from "../src/adapters/file/file-store.js";
import { StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { spawnServer, type ServerProcess } from "../test/support/process.js";

const CALLERS = 16;
const WARMUP_MS = 1000;
const ITEMS_WRITTEN = 1000;

const args = parseArgs({
  options: { items: { type: "string", default: "1000000" }, groups: { type: "string", default: "1000" }, seconds: { type: "string", default: "5" } },
}).values;
const TOTAL_ITEMS = Number(args.items);
const GROUPS = Number(args.groups);
const MEASURE_MS = Number(args.seconds) * 1000;

type StreamClient = Client<typeof StreamService>;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const root = mkdtempSync(join(os.tmpdir(), "iii-stream-bench-durable-"));

function client(url: string): StreamClient {
  return createClient(StreamService, createConnectTransport({ baseUrl: url, httpVersion: "2", useBinaryFormat: true }));
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Resident memory of a process, from /proc (Linux). */
function rssMiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) / 1024 : NaN;
}

async function stop(server: ServerProcess): Promise<void> {
  server.child.kill("SIGTERM");
  await server.exited;
}

interface WriteFigures {
  label: string;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

async function measureWrites(label: string, serverArgs: string[]): Promise<WriteFigures> {
  const server = await spawnServer(["--port", "0", ...serverArgs]);
  try {
    const writer = client(server.url);
    const data = fromJson(ValueSchema, { name: "bench", count: 1, tags: ["a", "b"] });
    const latencies: number[] = [];
    let measuring = false;
    let stopped = false;
    let next = 0;
    const caller = async () => {
      while (!stopped) {
        const n = next++ % ITEMS_WRITTEN;
        const started = performance.now();
        await writer.set({ streamName: "bench", groupId: `g${n % 10}`, itemId: `i${n}`, data });
        if (measuring) latencies.push(performance.now() - started);
      }
    };
    const callers = Array.from({ length: CALLERS }, caller);
    await sleep(WARMUP_MS);
    measuring = true;
    const started = performance.now();
    await sleep(MEASURE_MS);
    measuring = false;
    const seconds = (performance.now() - started) / 1000;
    stopped = true;
    await Promise.all(callers);
    const sorted = Float64Array.from(latencies).sort();
    return { label, perSecond: latencies.length / seconds, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) };
  } finally {
    await stop(server);
  }
}

/** Writes the large store through the adapter itself, so its layout (history included) is the real one. */
async function buildLargeStore(dataDir: string): Promise<number> {
  const started = performance.now();
  const adapter = FileStore.open({ dataDir });
  const perGroup = Math.ceil(TOTAL_ITEMS / GROUPS);
  for (let g = 0; g < GROUPS; g++) {
    const writes = [];
    for (let i = 0; i < perGroup; i++) {
      writes.push(
        adapter.commit({
          streamName: "large",
          groupId: `group-${g}`,
          itemId: `item-${i}`,
          expectedRevision: 0,
          value: { name: `item ${i} of group ${g}`, count: i, tags: ["a", "b"], done: i % 2 === 0 },
          timestampMs: Date.now(),
        }),
      );
    }
    await Promise.all(writes);
  }
  await adapter.close();
  return (performance.now() - started) / 1000;
}

interface StartFigures {
  label: string;
  readyMs: number;
  rssReadyMiB: number;
  firstReadsMs?: number;
  rssAfterReadsMiB?: number;
}

async function measureStart(label: string, serverArgs: string[], read: boolean): Promise<StartFigures> {
  const started = performance.now();
  const server = await spawnServer(["--port", "0", ...serverArgs], {}, 120_000);
  const readyMs = performance.now() - started;
  try {
    const rssReadyMiB = rssMiB(server.child.pid!);
    if (!read) return { label, readyMs, rssReadyMiB };
    const reader = client(server.url);
    const readsStarted = performance.now();
    const all = await reader.listAll({});
    if (all.streams[0]?.groups.length !== GROUPS) throw new Error(`ListAll found ${all.streams[0]?.groups.length} groups`);
    let items = 0;
    for (let g = 0; g < 10; g++) items += (await reader.list({ streamName: "large", groupId: `group-${(g * 97) % GROUPS}` })).items.length;
    for (let i = 0; i < 1000; i++) {
      const reply = await reader.get({ streamName: "large", groupId: `group-${(i * 7919) % GROUPS}`, itemId: `item-${(i * 104729) % Math.ceil(TOTAL_ITEMS / GROUPS)}` });
      if (!reply.item) throw new Error("a stored item is missing");
    }
    const firstReadsMs = performance.now() - readsStarted;
    if (items !== 10 * Math.ceil(TOTAL_ITEMS / GROUPS)) throw new Error(`List found ${items} items`);
    return { label, readyMs, rssReadyMiB, firstReadsMs, rssAfterReadsMiB: rssMiB(server.child.pid!) };
  } finally {
    await stop(server);
  }
}

function quickCheckSeconds(dataDir: string): number {
  const db = new Database(join(dataDir, STORE_FILE_NAME), { readonly: true });
  const started = performance.now();
  db.pragma("quick_check");
  db.close();
  return (performance.now() - started) / 1000;
}

function fileMiB(path: string): number {
  try {
    return statSync(path).size / 1024 / 1024;
  } catch {
    return 0;
  }
}

const f1 = (n: number) => n.toFixed(1);

try {
  console.log(`machine: ${os.cpus().length} cores, load average ${os.loadavg().map(f1).join(" ")}; node ${process.version}`);
  console.log(`\n(a) acknowledged Set calls/s, ${CALLERS} concurrent callers, ${MEASURE_MS / 1000} s each`);
  const writes = [
    await measureWrites("memory", ["--adapter", "memory"]),
    await measureWrites("file (fsync before reply)", ["--data-dir", join(root, "writes-durable")]),
    await measureWrites("file, --sync-interval-ms 1000", ["--data-dir", join(root, "writes-relaxed"), "--sync-interval-ms", "1000"]),
  ];
  console.table(writes.map((w) => ({ adapter: w.label, "writes/s": Math.round(w.perSecond), "p50 ms": f1(w.p50Ms), "p99 ms": f1(w.p99Ms) })));

  console.log(`\n(b) start-up with ${TOTAL_ITEMS.toLocaleString("en")} items in ${GROUPS.toLocaleString("en")} groups`);
  const large = join(root, "large");
  const buildSeconds = await buildLargeStore(large);
  const storeMiB = fileMiB(join(large, STORE_FILE_NAME)) + fileMiB(join(large, `${STORE_FILE_NAME}-wal`));
  console.log(`built in ${f1(buildSeconds)} s; store ${f1(storeMiB)} MiB on disk`);
  const starts = [
    await measureStart("memory, empty (process baseline)", ["--adapter", "memory"], false),
    await measureStart(`file, ${TOTAL_ITEMS.toLocaleString("en")} items`, ["--data-dir", large], true),
  ];
  console.table(
    starts.map((s) => ({
      server: s.label,
      "ready ms": Math.round(s.readyMs),
      "RSS at ready MiB": f1(s.rssReadyMiB),
      "ListAll + 10 List + 1000 Get ms": s.firstReadsMs === undefined ? "" : Math.round(s.firstReadsMs),
      "RSS after MiB": s.rssAfterReadsMiB === undefined ? "" : f1(s.rssAfterReadsMiB),
    })),
  );
  console.log(`PRAGMA quick_check of the whole store (not run at start-up): ${f1(quickCheckSeconds(large))} s`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
