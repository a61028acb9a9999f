import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectRedisBackend } from "../src/index.js";
import { value } from "./conformance/proto-values.js";
import { eventually } from "./support/function-server.js";
import { startRedisCluster, uniquePrefix, type RedisCluster } from "./support/redis.js";
import { startServer, type RunningServer } from "./support/server.js";
import { silentLog } from "../src/index.js";

/*
 * Registrations and worker functions across instances on a three-master Redis Cluster
 * started for this file: the registrations live on one shard, each instance's call
 * channel on the shard of its own hash tag.
 */

const keyPrefix = uniquePrefix("fleet-cluster");
let cluster: RedisCluster;
const servers: RunningServer[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster();
});

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
  await cluster?.stop();
});

async function instance(): Promise<RunningServer> {
  const backend = await connectRedisBackend({ url: cluster.url, keyPrefix, instanceTtlMs: 1500 });
  expect(backend.items.isCluster).toBe(true);
  const server = await startServer({ backend, log: silentLog });
  servers.push(server);
  return server;
}

describe("on Redis Cluster", () => {
  it("shares triggers, and calls a worker connected to another instance once per write; a stopped host leaves the fleet", async () => {
    const instances = await Promise.all([instance(), instance(), instance()]);
    const [host, ...others] = instances;
    const calls: number[] = [];
    host.server.functions.registerWorkerFunction("cluster::audit", {
      invoke: async (_id, payload) => {
        calls.push((payload as { offset: number }).offset);
        return null;
      },
    });
    const triggerId = await others[0].server.functions.registerTrigger({ type: "stream", functionId: "cluster::audit", config: { streamName: "s" } });
    await eventually(() => {
      for (const other of others) expect(other.server.functions.listFunctions()).toContainEqual({ functionId: "cluster::audit", kind: "worker" });
      for (const one of instances) expect(one.server.functions.listTriggers().map((t) => t.triggerId)).toContain(triggerId);
    }, 10_000);

    await Promise.all(
      Array.from({ length: 24 }, (_, i) => instances[i % 3].client().set({ streamName: "s", groupId: `g${i % 4}`, itemId: `i${i}`, data: value(i) })),
    );
    await eventually(() => expect(calls).toHaveLength(24));
    await new Promise((resolve) => setTimeout(resolve, 300));

    expect(calls.sort((x, y) => x - y)).toEqual(Array.from({ length: 24 }, (_, i) => Math.floor(i / 4) + 1));
    for (const one of instances) expect(one.server.functions.listTriggers()[0].stats).toMatchObject({ calls: 8, failures: 0 });

    await host.stop();
    await eventually(() => {
      for (const other of others) expect(other.server.functions.listFunctions()).toEqual([]);
    }, 10_000);
  });
});
