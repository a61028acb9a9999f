/**
 * What at-least-once stream triggers cost and how fast they drain (issue 17), on real
 * server processes (file and Redis adapters) with a remote function in this process that
 * answers at once:
 * - Set calls/s from concurrent callers with no trigger, one at_most_once and one
 *   at_least_once trigger on the written stream;
 * - end-to-end trigger latency (from the Set call to the function receiving the call)
 *   p50/p99, in those runs;
 * - the time to drain a backlog of 100,000 pending calls: written while the trigger's
 *   function is not registered (the calls wait, counted as lag), then the function is
 *   registered and the clock runs until every call has been received.
 *
 *   npm run build && npx tsx bench/durable-triggers.ts [seconds per run, default 5] [backlog, default 100000]
 *
 * Needs Redis at REDIS_URL (default redis://127.0.0.1:6379); its keys go under a prefix
 * of their own, deleted afterwards. Prints one line per figure.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, loadavg } from "node:os";
import { join } from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { create, fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Redis } from "ioredis";
import { StreamService, BatchWriteSchema } from "../gen/iii/stream/v1/stream_pb.js";
import { TriggerService } from "../gen/iii/stream/v1/triggers_pb.js";

const SECONDS = Number(process.argv[2] ?? 5);
const BACKLOG = Number(process.argv[3] ?? 100_000);
const CALLERS = 16;
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const BIN = fileURLToPath(new URL("../bin/iii-stream.mjs", import.meta.url));
const root = mkdtempSync(join(tmpdir(), "iii-stream-bench-durable-"));
const prefixes: string[] = [];

type Delivery = "none" | "at_most_once" | "at_least_once";
type Adapter = "file" | "redis";

/** The function: records when each call arrived and the Set's send time carried in the value. */
const received = new Map<string, number>();
const latencies: number[] = [];
const functionServer = http.createServer((req, res) => {
  let body = "";
  req.on("data", (chunk: Buffer) => (body += chunk.toString()));
  req.on("end", () => {
    const { payload } = JSON.parse(body) as { payload: { delivery_id: string; event: { data?: { sentAt?: number } } } };
    if (!received.has(payload.delivery_id)) {
      received.set(payload.delivery_id, Date.now());
      const sentAt = payload.event.data?.sentAt;
      if (sentAt !== undefined) latencies.push(performance.timeOrigin + performance.now() - sentAt);
    }
    res.writeHead(200, { "content-type": "application/json" }).end("{}");
  });
});

async function startServer(adapter: Adapter, label: string, config: object): Promise<{ child: ChildProcess; url: string }> {
  const file = join(root, `${label}.json`);
  let adapterConfig: object;
  if (adapter === "file") {
    adapterConfig = { name: "file", config: { file_path: join(root, `${label}-data`) } };
  } else {
    const prefix = `iii-stream-bench:${label}:${Date.now().toString(36)}:`;
    prefixes.push(prefix);
    adapterConfig = { name: "redis", config: { redis_url: REDIS_URL, key_prefix: prefix } };
  }
  writeFileSync(file, JSON.stringify({ adapter: adapterConfig, ...config }));
  const child = spawn(process.execPath, [BIN, "--config", file, "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 30_000);
    const check = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (https?:\/\/\S+) \(/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout!.on("data", check);
    child.stderr!.on("data", check);
  });
  return { child, url };
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

function clients(url: string) {
  const transport = createConnectTransport({ baseUrl: url, httpVersion: "2" });
  return { stream: createClient(StreamService, transport), triggers: createClient(TriggerService, transport) };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

function triggerConfig(delivery: Delivery, functionUrl: string, functionId = "sink"): object {
  if (delivery === "none") return {};
  return {
    ...(functionId === "sink" ? { functions: [{ function_id: "sink", url: functionUrl }] } : {}),
    triggers: [
      {
        trigger_id: "bench",
        type: "stream",
        function_id: functionId,
        config: { stream_name: "bench", ...(delivery === "at_least_once" ? { delivery: "at_least_once" } : {}) },
      },
    ],
  };
}

/** Set calls/s from CALLERS callers for SECONDS, then the latency of the trigger calls they caused. */
async function throughput(adapter: Adapter, delivery: Delivery, functionUrl: string): Promise<void> {
  const { child, url } = await startServer(adapter, `${adapter}-${delivery}`, triggerConfig(delivery, functionUrl));
  try {
    const { stream } = clients(url);
    received.clear();
    latencies.length = 0;
    // Warm the connection and the server.
    for (let i = 0; i < 200; i++) await stream.set({ streamName: "warm", groupId: "g", itemId: `w${i % 10}`, data: fromJson(ValueSchema, { i }) });
    const load = loadavg()[0];
    let sets = 0;
    const end = performance.now() + SECONDS * 1000;
    await Promise.all(
      Array.from({ length: CALLERS }, async (_, caller) => {
        for (let n = 0; performance.now() < end; n++) {
          const data = fromJson(ValueSchema, { sentAt: performance.timeOrigin + performance.now(), n });
          await stream.set({ streamName: "bench", groupId: `g${caller % 4}`, itemId: `c${caller}-i${n % 8}`, data });
          sets++;
        }
      }),
    );
    const rate = sets / SECONDS;
    let line = `${adapter} ${delivery}: Set ${rate.toFixed(0)} calls/s (${CALLERS} callers, ${SECONDS} s, load ${load.toFixed(2)})`;
    if (delivery !== "none") {
      const all = await until(() => received.size >= sets, 120_000);
      const sorted = [...latencies].sort((a, b) => a - b);
      line += `; trigger latency p50 ${percentile(sorted, 50).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms over ${sorted.length} calls`;
      if (!all) line += ` (only ${received.size} of ${sets} calls arrived)`;
    }
    console.log(line);
  } finally {
    await stop(child);
  }
}

/** A backlog of BACKLOG calls to an unregistered function, then the time to deliver them all once it is registered. */
async function drain(adapter: Adapter, functionUrl: string): Promise<void> {
  const { child, url } = await startServer(adapter, `${adapter}-drain`, {
    ...triggerConfig("at_least_once", functionUrl, "late"),
    max_trigger_outbox: BACKLOG,
  });
  try {
    const { stream, triggers } = clients(url);
    received.clear();
    latencies.length = 0;
    const perBatch = 100;
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < BACKLOG) {
          const first = next;
          next += perBatch;
          const writes = [];
          for (let i = first; i < Math.min(first + perBatch, BACKLOG); i++) {
            writes.push(create(BatchWriteSchema, { itemId: `i${i % 1000}`, write: { case: "set", value: fromJson(ValueSchema, { i }) } }));
          }
          await stream.batch({ streamName: "bench", groupId: `g${Math.floor(first / perBatch) % 16}`, writes });
        }
      }),
    );
    const written = (performance.now() - started) / 1000;
    const [trigger] = (await triggers.listTriggers({})).triggers;
    console.log(`${adapter} drain: ${BACKLOG} changes written in ${written.toFixed(1)} s (Batch of ${perBatch}); lag before the function exists: ${trigger.lag}`);
    const load = loadavg()[0];
    const clock = performance.now();
    await triggers.registerFunction({ functionId: "late", url: functionUrl });
    const all = await until(() => received.size >= BACKLOG, 600_000);
    const seconds = (performance.now() - clock) / 1000;
    const lag = (await triggers.listTriggers({})).triggers[0].lag;
    console.log(
      `${adapter} drain: ${received.size} calls delivered in ${seconds.toFixed(1)} s (${(received.size / seconds).toFixed(0)} calls/s), lag after ${lag}, load at start ${load.toFixed(2)}` +
        (all ? "" : " (incomplete)"),
    );
  } finally {
    await stop(child);
  }
}

async function main(): Promise<void> {
  await new Promise<void>((resolve) => functionServer.listen(0, "127.0.0.1", resolve));
  const functionUrl = `http://127.0.0.1:${(functionServer.address() as AddressInfo).port}`;
  try {
    for (const adapter of ["file", "redis"] as const) {
      for (const delivery of ["none", "at_most_once", "at_least_once"] as const) await throughput(adapter, delivery, functionUrl);
    }
    for (const adapter of ["file", "redis"] as const) await drain(adapter, functionUrl);
  } finally {
    functionServer.close();
    functionServer.closeAllConnections();
    const redis = new Redis(REDIS_URL);
    for (const prefix of prefixes) {
      let cursor = "0";
      do {
        const [nextCursor, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
        cursor = nextCursor;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== "0");
    }
    await redis.quit();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
