/**
 * What deltas save: a 100 KB item receiving single-field increments (`Update`, one
 * `increment` op), watched by Subscribe calls (Connect binary over HTTP/2, each on its own
 * connection) with and without `deltas`.
 *
 * - Bytes on the wire per change: what each subscriber's socket read over the window
 *   (HTTP/2 frames included), divided by the changes it received.
 * - Server CPU per delivery: the server process's CPU (/proc/<pid>/stat) over the window,
 *   less that of the same writes with nobody subscribed, divided by the deliveries.
 *
 * After a warm-up, three phases on one server (memory adapter unless --adapter), each on a fresh group:
 * writes only, subscribers without deltas, subscribers with deltas.
 *
 *   npx tsx bench/deltas.ts [--subscribers 10 --changes 300 --rate 30 --item-kb 100 --adapter memory]
 *
 * Run `npm run build` first: the server is the built command line.
 */
import http2 from "node:http2";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createStreamClient } from "../src/client/node.js";
import { SubscribeRequestSchema, SubscribeResponseSchema } from "../gen/iii/stream/v1/stream_pb.js";
import { cpuSeconds } from "./suite/proc-stats.js";
import { spawnServer } from "../test/support/process.js";
import { numberFlag, textFlag } from "./script-flags.js";

const SUBSCRIBERS = numberFlag("subscribers", 10);
const CHANGES = numberFlag("changes", 300);
const RATE = numberFlag("rate", 30);
const ITEM_KB = numberFlag("item-kb", 100);
const ADAPTER = textFlag("adapter", "memory");
const ROUNDS = numberFlag("rounds", 3);
const STREAM = "bench-deltas";
const ENVELOPE_HEADER = 5;
const END_STREAM_FLAG = 0b10;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** About ITEM_KB kilobytes of JSON in 100-byte fields, and the counter the writes increment. */
function bigItem(): Record<string, string | number> {
  const value: Record<string, string | number> = { counter: 0 };
  for (let i = 0; i < ITEM_KB * 10; i++) value[`field-${i}`] = "v".repeat(88);
  return value;
}

/** One Subscribe call on its own connection, counting the bytes its socket reads and the changes after the snapshot. */
class Subscriber {
  readonly ready: Promise<void>;
  changes = 0;
  deltaChanges = 0;
  wholeChanges = 0;
  private readonly session: http2.ClientHttp2Session;
  private startBytes = 0;
  private markReady!: () => void;
  private failed: Error | undefined;

  constructor(url: string, groupId: string, deltas: boolean) {
    this.ready = new Promise((resolve) => (this.markReady = resolve));
    this.session = http2.connect(url);
    this.session.on("error", (error) => (this.failed = error));
    const request = toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { streamName: STREAM, groupId, deltas }));
    const envelope = Buffer.alloc(ENVELOPE_HEADER + request.length);
    envelope.writeUInt32BE(request.length, 1);
    envelope.set(request, ENVELOPE_HEADER);
    const stream = this.session.request({
      ":method": "POST",
      ":path": "/iii.stream.v1.StreamService/Subscribe",
      "content-type": "application/connect+proto",
      "connect-protocol-version": "1",
    });
    stream.end(envelope);
    let pending: Buffer = Buffer.alloc(0);
    let snapshotSeen = false;
    stream.on("data", (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= ENVELOPE_HEADER) {
        const length = pending.readUInt32BE(1);
        if (pending.length < ENVELOPE_HEADER + length) break;
        const flags = pending[0];
        const body = pending.subarray(ENVELOPE_HEADER, ENVELOPE_HEADER + length);
        pending = pending.subarray(ENVELOPE_HEADER + length);
        if ((flags & END_STREAM_FLAG) !== 0) {
          this.failed ??= new Error(`the stream ended: ${body.toString()}`);
          continue;
        }
        if (!snapshotSeen) {
          snapshotSeen = true;
          this.startBytes = this.session.socket.bytesRead;
          this.markReady();
          continue;
        }
        this.changes++;
        // Only small messages are decoded: a whole 100 KB value is told by its size.
        if (length < 1024) {
          const message = fromBinary(SubscribeResponseSchema, body).message;
          if (message.case === "change" && message.value.ops.length > 0) this.deltaChanges++;
          else this.wholeChanges++;
        } else this.wholeChanges++;
      }
    });
  }

  get error(): Error | undefined {
    return this.failed;
  }

  get bytes(): number {
    return this.session.socket.bytesRead - this.startBytes;
  }

  close(): void {
    this.session.destroy();
  }
}

interface Phase {
  round: number;
  name: string;
  serverCpuSeconds: number;
  wallSeconds: number;
  bytesPerChange: number;
  deltaShare: number;
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), "iii-stream-bench-deltas-"));
    // On Redis (REDIS_URL or the local default) under a key prefix of its own.
  const adapterArgs = ADAPTER === "file" ? ["--data-dir", dataDir] : ADAPTER === "redis" ? ["--redis-prefix", `bench-deltas-${Date.now().toString(36)}:`] : [];
  const server = await spawnServer(["--port", "0", "--adapter", ADAPTER, ...adapterArgs], process.env.REDIS_URL ? { III_STREAM_REDIS_URL: process.env.REDIS_URL } : {});
  const pid = server.child.pid!;
  const client = createStreamClient({ baseUrl: server.url });
  const phases: Phase[] = [];
  try {
    const item = bigItem();
    console.log(`item: ${JSON.stringify(item).length} bytes of JSON; ${CHANGES} increments at ${RATE}/s; ${SUBSCRIBERS} subscribers; adapter ${ADAPTER}`);
    const plan: Array<[number, string, number, boolean]> = [
      // Not reported: compiles the write and delivery paths, so that the first phase measured is not the slowest.
      [0, "warm-up", SUBSCRIBERS, true],
    ];
    // Interleaved rounds: a change in the machine's load falls on every phase alike.
    for (let round = 1; round <= ROUNDS; round++) {
      plan.push([round, "writes only", 0, false], [round, "whole values", SUBSCRIBERS, false], [round, "deltas", SUBSCRIBERS, true]);
    }
    for (const [round, name, subscribers, deltas] of plan) {
      const group = `${name.replace(/ /g, "-")}-${round}`;
      await client.set(STREAM, group, "big", item);
      const subs = Array.from({ length: subscribers }, () => new Subscriber(server.url, group, deltas));
      await Promise.all(subs.map((sub) => sub.ready));
      await sleep(200);
      const cpuBefore = cpuSeconds(pid)!;
      const started = performance.now();
      for (let i = 0; i < CHANGES; i++) {
        const due = started + (i * 1000) / RATE;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        await client.update(STREAM, group, "big", [{ type: "increment", path: ["counter"], by: 1 }]);
      }
      const deadline = Date.now() + 60_000;
      while (subs.some((sub) => sub.changes < CHANGES && !sub.error) && Date.now() < deadline) await sleep(10);
      const wallSeconds = (performance.now() - started) / 1000;
      const serverCpuSeconds = cpuSeconds(pid)! - cpuBefore;
      const failed = subs.find((sub) => sub.error || sub.changes < CHANGES);
      if (failed) throw new Error(`a subscriber got ${failed.changes} of ${CHANGES} changes: ${failed.error?.message ?? "timed out"}`);
      const received = subs.reduce((sum, sub) => sum + sub.changes, 0);
      const bytes = subs.reduce((sum, sub) => sum + sub.bytes, 0);
      const deltaChanges = subs.reduce((sum, sub) => sum + sub.deltaChanges, 0);
      if (name !== "warm-up") phases.push({ round, name, serverCpuSeconds, wallSeconds, bytesPerChange: received ? bytes / received : 0, deltaShare: received ? deltaChanges / received : 0 });
      for (const sub of subs) sub.close();
      await client.delete(STREAM, group, "big");
    }
  } finally {
    client.close();
    server.child.kill("SIGTERM");
    await server.exited;
    rmSync(dataDir, { recursive: true, force: true });
  }
  console.log("\n| round | phase | server CPU s | per write | bytes on the wire per change per subscriber | changes sent as ops | server CPU per delivery (less writes only) |");
  console.log("| --- | --- | --- | --- | --- | --- | --- |");
  const perDelivery = new Map<string, number[]>();
  for (const phase of phases) {
    const writesOnly = phases.find((other) => other.round === phase.round && other.name === "writes only")!.serverCpuSeconds;
    const delivery = ((phase.serverCpuSeconds - writesOnly) / (CHANGES * SUBSCRIBERS)) * 1e6;
    const subscribed = phase.name !== "writes only";
    if (subscribed) perDelivery.set(phase.name, [...(perDelivery.get(phase.name) ?? []), delivery]);
    console.log(
      `| ${phase.round} | ${phase.name} | ${phase.serverCpuSeconds.toFixed(2)} | ${((phase.serverCpuSeconds / CHANGES) * 1e3).toFixed(2)} ms | ${subscribed ? phase.bytesPerChange.toFixed(0) : ""} | ${subscribed ? `${(phase.deltaShare * 100).toFixed(0)} %` : ""} | ${subscribed ? `${delivery.toFixed(1)} µs` : ""} |`,
    );
  }
  for (const [name, values] of perDelivery) {
    const sorted = [...values].sort((a, b) => a - b);
    console.log(`${name}: server CPU per delivery, median of ${sorted.length} rounds: ${sorted[Math.floor(sorted.length / 2)].toFixed(1)} µs`);
  }
}

await main();
