import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JsonValue } from "../src/index.js";
import { StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { TriggerService } from "../gen/iii/stream/v1/triggers_pb.js";
import { op, value } from "./conformance/proto-values.js";
import { uniqueNames } from "./conformance/unique-names.js";
import { eventually, startPlainFunctionServer, type FunctionServer } from "./support/function-server.js";
import { runCli, spawnServer, type ServerProcess } from "./support/process.js";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./support/redis.js";
import { transportFor } from "./support/server.js";
import { GroupView, ViewReader, waitFor } from "./support/subscribe-view.js";

/*
 * Two real server processes on the shared Redis, as behind a load balancer, and a remote
 * function server started here. Triggers are registered through one instance; writes go
 * through both; both instances watch the group (so each receives every change over
 * Redis), and still every write reaches the function exactly once.
 */

const keyPrefix = uniquePrefix("fleet-triggers");
const streamName = uniqueNames("redis-fleet");
const dir = mkdtempSync(join(tmpdir(), "iii-stream-fleet-"));
const processes: ServerProcess[] = [];
let audit: FunctionServer;
let a: { stream: Client<typeof StreamService>; triggers: Client<typeof TriggerService> };
let b: typeof a;

function clients(url: string): typeof a {
  return {
    stream: createClient(StreamService, transportFor(url, "connect-binary-h2")),
    triggers: createClient(TriggerService, transportFor(url, "connect-json-h1")),
  };
}

beforeAll(async () => {
  audit = await startPlainFunctionServer(() => null);
  const config = join(dir, "config.yaml");
  writeFileSync(config, `adapter:\n  name: redis\n  config:\n    key_prefix: "${keyPrefix}"\n`);
  const args = ["--config", config, "--adapter", "redis", "--redis-url", REDIS_URL, "--port", "0"];
  processes.push(...(await Promise.all([spawnServer(args), spawnServer(args)])));
  a = clients(processes[0].url);
  b = clients(processes[1].url);
});

afterAll(async () => {
  for (const server of processes) server.child.kill("SIGTERM");
  await Promise.all(processes.map((server) => server.exited));
  await audit?.close();
  await deleteKeys(keyPrefix);
  rmSync(dir, { recursive: true, force: true });
});

async function triggerIds(instance: typeof a): Promise<string[]> {
  return (await instance.triggers.listTriggers({})).triggers.map((t) => t.triggerId);
}

async function handlerCalls(instance: typeof a, triggerId: string): Promise<number> {
  const trigger = (await instance.triggers.listTriggers({})).triggers.find((t) => t.triggerId === triggerId);
  return Number(trigger?.stats?.calls ?? -1);
}

describe("two server processes on one Redis", () => {
  it("share registrations: what one registers or removes, the other sees", async () => {
    await a.triggers.registerFunction({ functionId: "fleet::shared", url: audit.url });
    const { triggerId } = await b.triggers.registerTrigger({ type: "stream", functionId: "fleet::shared", config: { streamName: "x" } });
    await eventually(async () => {
      expect((await b.triggers.listFunctions({})).functions.map((f) => [f.functionId, f.url])).toContainEqual(["fleet::shared", audit.url]);
      expect(await triggerIds(a)).toContain(triggerId);
    });
    expect((await a.triggers.unregisterTrigger({ triggerId })).found).toBe(true);
    expect((await b.triggers.unregisterFunction({ functionId: "fleet::shared" })).found).toBe(true);
    await eventually(async () => {
      expect(await triggerIds(b)).not.toContain(triggerId);
      expect((await a.triggers.listFunctions({})).functions.map((f) => f.functionId)).not.toContain("fleet::shared");
    });
  });

  it("fire a trigger registered through one of them exactly once per write, whichever took the write", async () => {
    const s = streamName("once");
    await a.triggers.registerFunction({ functionId: "audit::log", url: audit.url });
    const { triggerId } = await a.triggers.registerTrigger({ type: "stream", functionId: "audit::log", config: { streamName: s } });
    await eventually(async () => expect(await triggerIds(b)).toContain(triggerId));

    const readers = [a, b].map((instance) => new ViewReader(instance.stream, { streamName: s, groupId: "g" }, new GroupView(undefined, true)));
    try {
      await waitFor(() => readers.every((r) => r.view.offset !== undefined), "both snapshots");
      // Two concurrent writers per instance: creates, updates and deletes of shared items, and events.
      const through = { a: 0, b: 0 };
      const writer = async (instance: "a" | "b", writerId: string) => {
        const client = { a, b }[instance].stream;
        for (let i = 0; i < 24; i++) {
          const itemId = `item-${i % 5}`;
          if (i % 8 === 7) await client.send({ streamName: s, groupId: "g", type: "ping", data: value({ writerId, i }) });
          else if (i % 6 === 5) {
            // A delete that finds nothing writes nothing, and fires nothing.
            if ((await client.delete({ streamName: s, groupId: "g", itemId })).oldValue === undefined) continue;
          } else if (i % 2) await client.update({ streamName: s, groupId: "g", itemId, ops: [op.increment(["n"], 1)] });
          else await client.set({ streamName: s, groupId: "g", itemId, data: value({ writerId, i }) });
          through[instance]++;
        }
      };
      await Promise.all([writer("a", "a1"), writer("a", "a2"), writer("b", "b1"), writer("b", "b2")]);
      const sends = 4 * 3;
      const lastOffset = through.a + through.b - sends;
      const callsOf = () => audit.calls.filter((c) => (c.payload as { streamName: string }).streamName === s).map((c) => c.payload as unknown as Payload);
      await waitFor(() => readers.every((r) => r.view.offset === lastOffset), "both subscribers at the last offset");
      await waitFor(() => callsOf().length >= through.a + through.b, "every call");
      // Late duplicates would arrive within a moment of the others.
      await new Promise((resolve) => setTimeout(resolve, 300));

      const calls = callsOf();
      const changeOffsets = calls.filter((p) => p.revision !== null).map((p) => p.offset);
      expect(changeOffsets.sort((x, y) => x - y)).toEqual(Array.from({ length: lastOffset }, (_, i) => i + 1));
      const events = calls.filter((p) => p.revision === null).map((p) => JSON.stringify(p.event.event?.data));
      expect(events).toHaveLength(sends);
      expect(new Set(events).size).toBe(sends);
      // Each instance called the handler once per write it took, never for the other's.
      expect(await handlerCalls(a, triggerId)).toBe(through.a);
      expect(await handlerCalls(b, triggerId)).toBe(through.b);
      for (const reader of readers) expect(reader.view.problems).toEqual([]);
    } finally {
      await Promise.all(readers.map((r) => r.leave()));
    }
  });
});

describe("an instance whose Redis cannot be reached", () => {
  it("does not start: it says why and exits 1", async () => {
    const run = runCli(["--adapter", "redis", "--redis-url", "redis://127.0.0.1:1", "--port", "0"]);
    expect(await run.exited).toBe(1);
    expect(run.output()).toContain("Redis is unavailable (connecting to redis://127.0.0.1:1");
    expect(run.output()).not.toContain("listening");
  });
});

interface Payload {
  offset: number;
  revision: number | null;
  event: { type: string; event?: { data: JsonValue } };
}
