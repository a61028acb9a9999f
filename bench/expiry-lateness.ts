/**
 * How late expired items are removed: items written with ttl_ms spread over a few
 * seconds, one Subscribe watching their group, and for each item the time from its
 * expiry to the arrival of its DELETE change marked `expired` (server and client share
 * this machine's clock). The expiry is taken as the moment the Set was sent plus its
 * ttl_ms, no later than the server's: a figure overstates lateness by up to one Set. Runs one in-process server per adapter with the default
 * sweep interval unless --sweep-ms is given.
 *
 *   npx tsx bench/expiry-lateness.ts [--items 1000 --spread-ms 3000 --sweep-ms 250 --adapters memory,file,redis] [--burst]
 *
 * With --burst every item expires at the same instant, a while after the last write
 * (each item's ttl_ms is what remains until then): the sweeper's worst case.
 *
 * Redis is the one at REDIS_URL (default redis://127.0.0.1:6379), under a fresh key prefix
 * that is deleted afterwards.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { ChangeType, StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { createStreamServer, FileStore, MemoryItemStore, RedisItemStore, silentLog, type ItemStore } from "../src/index.js";
import { deleteKeys, REDIS_URL } from "../test/support/redis.js";
import { numberFlag, textFlag } from "./script-flags.js";

const ITEMS = numberFlag("items", 1000);
const SPREAD_MS = numberFlag("spread-ms", 3000);
const SWEEP_MS = numberFlag("sweep-ms", 250);
const ADAPTERS = textFlag("adapters", "memory,file,redis").split(",");
const BURST = process.argv.includes("--burst");

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function measure(adapter: string): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), "iii-stream-expiry-bench-"));
  const keyPrefix = `iii-stream-bench-expiry-${process.pid}:`;
  let store: ItemStore;
  if (adapter === "file") store = FileStore.open({ dataDir });
  else if (adapter === "redis") store = await RedisItemStore.connect({ url: REDIS_URL, keyPrefix });
  else store = new MemoryItemStore();
  const server = createStreamServer({ port: 0, backend: { items: store }, expirySweepMs: SWEEP_MS, log: silentLog });
  await server.start();
  const client = createClient(StreamService, createConnectTransport({ baseUrl: server.url, httpVersion: "2", useBinaryFormat: true }));
  const streamName = "expiry-bench";
  const abort = new AbortController();
  try {
    const arrivals = new Map<string, number>();
    const stream = client.subscribe({ streamName, groupId: "g" }, { signal: abort.signal });
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next(); // the snapshot
    const done = (async () => {
      while (arrivals.size < ITEMS) {
        const next = await iterator.next();
        if (next.done) throw new Error("the subscription ended");
        const message = next.value.message;
        if (message.case === "change" && message.value.type === ChangeType.DELETE && message.value.expired) {
          arrivals.set(message.value.itemId, Date.now());
        }
      }
    })();
    // Written in a burst, each with an expiry spread over the window after it.
    const expiresAt = new Map<string, number>();
    // Burst: late enough for every write to be done on a slow machine.
    const instant = Date.now() + 2000 + ITEMS * 5;
    for (let i = 0; i < ITEMS; i++) {
      const ttlMs = BURST ? Math.max(1, instant - Date.now()) : 500 + Math.floor((i * SPREAD_MS) / ITEMS);
      expiresAt.set(`i${i}`, Date.now() + ttlMs);
      await client.set({ streamName, groupId: "g", itemId: `i${i}`, data: fromJson(ValueSchema, { i }), ttlMs: BigInt(ttlMs) });
    }
    await done;
    const late = [...arrivals].map(([id, at]) => at - expiresAt.get(id)!).sort((a, b) => a - b);
    console.log(
      `${adapter.padEnd(6)} ${late.length} items${BURST ? " expiring at one instant" : ""}, sweep every ${SWEEP_MS} ms: ` +
        `late by p50 ${percentile(late, 50)} ms, p99 ${percentile(late, 99)} ms, max ${late.at(-1)} ms, min ${late[0]} ms`,
    );
  } finally {
    abort.abort();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
    if (adapter === "redis") await deleteKeys(keyPrefix);
  }
}

for (const adapter of ADAPTERS) await measure(adapter);
