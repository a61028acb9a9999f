/**
 * What atomic batches buy: items written per second with `Batch` calls of 100 writes
 * against single `Set` calls, on one server process (the built command line) over the
 * file or the Redis adapter.
 *
 * Each phase keeps the same number of calls in flight (--concurrency) for --seconds
 * through the client library (Connect over HTTP/2), every call writing small items
 * ({n, text of 40 characters}) of one group, cycling over 10,000 item ids so that most
 * writes overwrite. A phase is repeated --rounds times, alternating with the other, and
 * the median is printed. The file adapter runs with its default durability: every
 * acknowledged write is fsynced (a batch is one transaction, one fsync).
 *
 *   npx tsx bench/batch-throughput.ts [--adapter file|redis --batch 100 --concurrency 16 --seconds 5 --rounds 3]
 *
 * Run `npm run build` first. --adapter redis uses REDIS_URL (default redis://127.0.0.1:6379)
 * under a key prefix of its own, removed at the end.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createStreamClient, type StreamClient } from "../src/client/node.js";
import { spawnServer } from "../test/support/process.js";
import { deleteKeys, REDIS_URL, uniquePrefix } from "../test/support/redis.js";
import { numberFlag, textFlag } from "./script-flags.js";

const ADAPTER = textFlag("adapter", "file");
const BATCH = numberFlag("batch", 100);
const CONCURRENCY = numberFlag("concurrency", 16);
const SECONDS = numberFlag("seconds", 5);
const ROUNDS = numberFlag("rounds", 3);
const ITEMS = 10_000;
const TEXT = "x".repeat(40);

/** Keeps `CONCURRENCY` calls of `write` in flight for SECONDS; returns items written per second. */
async function phase(write: (first: number) => Promise<number>): Promise<number> {
  const deadline = performance.now() + SECONDS * 1000;
  const started = performance.now();
  let next = 0;
  let items = 0;
  const worker = async () => {
    while (performance.now() < deadline) {
      const first = next;
      next += BATCH;
      // Awaited first: `items += await ...` would read `items` before the call and drop the
      // counts that other workers added meanwhile.
      const written = await write(first);
      items += written;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return items / ((performance.now() - started) / 1000);
}

function singles(client: StreamClient, group: string): (first: number) => Promise<number> {
  let call = 0;
  return async () => {
    const i = call++;
    await client.set("bench-batch", group, `item-${i % ITEMS}`, { n: i, text: TEXT });
    return 1;
  };
}

function batches(client: StreamClient, group: string): (first: number) => Promise<number> {
  return async (first) => {
    const writes = Array.from({ length: BATCH }, (_, k) => ({ itemId: `item-${(first + k) % ITEMS}`, set: { n: first + k, text: TEXT } }));
    await client.batch("bench-batch", group, writes);
    return BATCH;
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), "iii-stream-bench-batch-"));
  const keyPrefix = uniquePrefix("bench-batch");
  const adapterArgs =
    ADAPTER === "file" ? ["--data-dir", dataDir] : ADAPTER === "redis" ? ["--redis-url", REDIS_URL, "--redis-prefix", keyPrefix] : [];
  const server = await spawnServer(["--port", "0", "--adapter", ADAPTER, "--no-metrics", ...adapterArgs]);
  const client = createStreamClient({ baseUrl: server.url });
  try {
    console.log(`adapter ${ADAPTER}; ${CONCURRENCY} calls in flight; ${SECONDS} s per phase; ${ROUNDS} rounds; batches of ${BATCH}`);
    // Warm-up: connections, JIT, the store's first pages.
    await phase(singles(client, "warm-up"));
    const single: number[] = [];
    const batched: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      single.push(await phase(singles(client, `single-${round}`)));
      batched.push(await phase(batches(client, `batch-${round}`)));
      console.log(`round ${round + 1}: single Set ${single.at(-1)!.toFixed(0)} items/s, Batch of ${BATCH} ${batched.at(-1)!.toFixed(0)} items/s`);
    }
    const s = median(single);
    const b = median(batched);
    console.log(`median: single Set ${s.toFixed(0)} items/s; Batch of ${BATCH} ${b.toFixed(0)} items/s (${(b / s).toFixed(1)}x)`);
  } finally {
    client.close();
    server.child.kill("SIGTERM");
    await server.exited;
    rmSync(dataDir, { recursive: true, force: true });
    if (ADAPTER === "redis") await deleteKeys(keyPrefix);
  }
}

await main();
