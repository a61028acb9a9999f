import { registerWorker, type IIIClient } from "iii-sdk";
import { afterAll, describe, expect, it } from "vitest";
import { connectRedisBackend, type JsonObject } from "../src/index.js";
import { value } from "./conformance/proto-values.js";
import { uniqueNames } from "./conformance/unique-names.js";
import { eventually } from "./support/function-server.js";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./support/redis.js";
import { startServer, type RunningServer } from "./support/server.js";
import { wsUrl } from "./support/ws-client.js";
import { silentLog } from "../src/index.js";

/*
 * Triggers of a worker (the real `iii-sdk`) connected to one instance, across two
 * instances on the shared Redis: a write taken by either instance reaches the worker
 * exactly once, and once the worker is gone, no instance calls it any more.
 */

const keyPrefix = uniquePrefix("fleet-worker-triggers");
const streamName = uniqueNames("redis-fleet-worker-triggers");
const cleanup: Array<() => Promise<unknown>> = [];

afterAll(async () => {
  for (const close of cleanup.reverse()) await close();
  await deleteKeys(keyPrefix);
});

async function instance(): Promise<RunningServer> {
  const backend = await connectRedisBackend({ url: REDIS_URL, keyPrefix });
  const running = await startServer({ backend, log: silentLog });
  cleanup.push(() => running.stop());
  return running;
}

function worker(on: RunningServer): IIIClient {
  // Telemetry off: the SDK keeps one telemetry connection per process.
  const client = registerWorker(wsUrl(on.url, "/"), { workerName: "fleet-trigger-test", otel: { enabled: false } });
  cleanup.push(() => client.shutdown());
  return client;
}

function triggerOf(on: RunningServer, functionId: string) {
  return on.server.functions.listTriggers().find((t) => t.functionId === functionId);
}

describe("a worker's trigger across instances", () => {
  it("fires once per write, whichever instance took it, and stops with the worker", async () => {
    const [a, b] = await Promise.all([instance(), instance()]);
    const s = streamName("once");
    const functionId = "fleet-sdk::audit";
    const seen: JsonObject[] = [];
    const sdk = worker(a);
    sdk.registerFunction(functionId, async (payload: JsonObject) => {
      seen.push(payload);
      return null;
    });
    sdk.registerTrigger({ type: "stream", function_id: functionId, config: { stream_name: s } });
    await eventually(() => {
      expect(triggerOf(b, functionId)).toBeDefined();
      expect(b.server.functions.listFunctions().find((f) => f.functionId === functionId)?.kind).toBe("worker");
    }, 10_000);
    // Both instances know the trigger under the id the worker's instance gave it.
    expect(triggerOf(b, functionId)!.triggerId).toBe(triggerOf(a, functionId)!.triggerId);

    await b.client().set({ streamName: s, groupId: "g", itemId: "from-b-1", data: value(1) });
    await b.client().set({ streamName: s, groupId: "g", itemId: "from-b-2", data: value(2) });
    await a.client().set({ streamName: s, groupId: "g", itemId: "from-a", data: value(3) });
    // Each instance counts the calls it made: only the writing one dispatches.
    await eventually(() => {
      expect(triggerOf(b, functionId)!.stats).toMatchObject({ calls: 2, failures: 0 });
      expect(triggerOf(a, functionId)!.stats).toMatchObject({ calls: 1, failures: 0 });
    }, 10_000);
    expect(seen.map((payload) => payload.id).sort()).toEqual(["from-a", "from-b-1", "from-b-2"]);

    await sdk.shutdown();
    await eventually(() => {
      expect(triggerOf(a, functionId)).toBeUndefined();
      expect(triggerOf(b, functionId)).toBeUndefined();
    }, 10_000);
    await b.client().set({ streamName: s, groupId: "g", itemId: "after", data: value(4) });
    await a.client().set({ streamName: s, groupId: "g", itemId: "after", data: value(5) });
    expect(seen).toHaveLength(3);
  });
});
