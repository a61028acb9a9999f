import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import type { JsonObject } from "../src/index.js";
import { StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { value } from "./conformance/proto-values.js";
import { eventually } from "./support/function-server.js";
import { spawnServer, type ServerProcess } from "./support/process.js";
import { deleteKeys, REDIS_URL, redisClient, uniquePrefix } from "./support/redis.js";
import { transportFor } from "./support/server.js";

/*
 * Two real server processes on the shared Redis with an at-least-once trigger to a remote
 * function started here, which answers slowly so that calls are in flight. Writes go
 * through both; the instance holding the trigger's lease is killed with SIGKILL while a
 * call is in flight. The other one takes the trigger over after the lease and delivers
 * every change, the interrupted call again under its delivery id, and no delivery id is
 * ever in flight twice at once.
 */

const LEASE_MS = 1000;
const keyPrefix = uniquePrefix("fleet-durable");
const dir = mkdtempSync(join(tmpdir(), "iii-stream-fleet-durable-"));
const processes: ServerProcess[] = [];
let functionServer: http.Server | undefined;

afterAll(async () => {
  for (const server of processes) server.child.kill("SIGKILL");
  await Promise.all(processes.map((server) => server.exited));
  if (functionServer) {
    const server = functionServer;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
  await deleteKeys(keyPrefix);
  rmSync(dir, { recursive: true, force: true });
});

interface Call {
  deliveryId: string;
  groupId: string;
  itemId: string;
  offset: number;
  startedAt: number;
  /** Whether the function answered it (false: the caller went away first). */
  answered: boolean;
}

describe("at-least-once triggers on a Redis fleet", () => {
  it("deliver every change with one instance at a time, and another takes over within the lease when it dies mid-call", { timeout: 60_000 }, async () => {
    const calls: Call[] = [];
    const inFlight = new Set<string>();
    const overlaps: string[] = [];
    functionServer = http.createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        const payload = (JSON.parse(body) as { payload: JsonObject }).payload;
        const call: Call = {
          deliveryId: payload.delivery_id as string,
          groupId: payload.groupId as string,
          itemId: payload.id as string,
          offset: payload.offset as number,
          startedAt: Date.now(),
          answered: false,
        };
        if (inFlight.has(call.deliveryId)) overlaps.push(call.deliveryId);
        inFlight.add(call.deliveryId);
        calls.push(call);
        const done = () => inFlight.delete(call.deliveryId);
        res.on("close", done);
        setTimeout(() => {
          call.answered = true;
          res.writeHead(200, { "content-type": "application/json" }).end("{}");
        }, 40);
      });
    });
    await new Promise<void>((resolve) => functionServer!.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(functionServer.address() as AddressInfo).port}`;

    const config = join(dir, "config.json");
    writeFileSync(
      config,
      JSON.stringify({
        adapter: { name: "redis", config: { key_prefix: keyPrefix } },
        trigger_lease_ms: LEASE_MS,
        functions: [{ function_id: "sink", url }],
        triggers: [
          {
            trigger_id: "fleet-sink",
            type: "stream",
            function_id: "sink",
            config: { stream_name: "fleet", delivery: "at_least_once", retry_initial_ms: 20, retry_max_ms: 100 },
          },
        ],
      }),
    );
    const args = ["--config", config, "--redis-url", REDIS_URL, "--port", "0"];
    processes.push(...(await Promise.all([spawnServer(args), spawnServer(args)])));
    const clients = processes.map((server) => createClient(StreamService, transportFor(server.url, "connect-binary-h2")));

    // Writes through both instances; each write is acknowledged before the next to its item.
    const acked: Array<{ groupId: string; itemId: string; offset: number }> = [];
    const write = async (via: number, n: number) => {
      const groupId = `g${n % 2}`;
      const itemId = `i${n % 5}`;
      const reply = await clients[via].set({ streamName: "fleet", groupId, itemId, data: value({ n }) });
      acked.push({ groupId, itemId, offset: Number(reply.offset) });
    };
    for (let n = 0; n < 40; n++) await write(n % 2, n);

    // Kill the instance holding the lease (its value starts with the holder's process id) while a call is in flight.
    const redis = redisClient();
    let victim: ServerProcess;
    try {
      const holder = await eventually(async () => {
        const value = await redis.get(`${keyPrefix}{outbox:${Buffer.from("fleet-sink").toString("base64url")}}:lease`);
        expect(value).toBeTruthy();
        return value!;
      });
      victim = processes.find((server) => holder.startsWith(`${server.child.pid}-`))!;
      expect(victim).toBeDefined();
    } finally {
      await redis.quit();
    }
    await eventually(() => expect(inFlight.size).toBeGreaterThan(0));
    const interrupted = [...inFlight];
    victim.child.kill("SIGKILL");
    await victim.exited;
    const killedAt = Date.now();
    const survivor = processes.indexOf(processes.find((server) => server !== victim)!);

    // More writes through the survivor, which now also delivers.
    for (let n = 40; n < 60; n++) await write(survivor, n);

    const key = (d: { groupId: string; offset: number }) => `${d.groupId}@${d.offset}`;
    await eventually(() => {
      const answered = new Set(calls.filter((call) => call.answered).map(key));
      expect(acked.filter((change) => !answered.has(key(change)))).toEqual([]);
    }, 30_000);

    expect(overlaps).toEqual([]);
    // The calls the dead instance had in flight were made again, under the same delivery ids.
    for (const deliveryId of interrupted) {
      expect(calls.filter((call) => call.deliveryId === deliveryId && call.answered).length).toBeGreaterThan(0);
    }
    // Taken over after the lease ran out, not much later (the survivor looks every 250 ms).
    const firstAfter = calls.find((call) => call.startedAt >= killedAt)!;
    expect(firstAfter.startedAt - killedAt).toBeLessThan(LEASE_MS + 5000);
    // Deduplicated by delivery id: one call per change, in offset order per item.
    const first = new Map<string, Call>();
    for (const call of calls) if (!first.has(call.deliveryId)) first.set(call.deliveryId, call);
    const last = new Map<string, number>();
    for (const call of first.values()) {
      expect(call.deliveryId).toBe(`fleet-sink/fleet/${call.groupId}/${call.offset}`);
      const item = `${call.groupId}/${call.itemId}`;
      expect(call.offset).toBeGreaterThan(last.get(item) ?? 0);
      last.set(item, call.offset);
    }
    expect(new Set([...first.values()].map(key)).size).toBe(first.size);
  });
});
