import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectRedisBackend, ErrorCode } from "../src/index.js";
import { eventually } from "./support/function-server.js";
import { redisClient, startRedisServer, uniquePrefix, type RedisServer } from "./support/redis.js";
import { startServer, type RunningServer } from "./support/server.js";
import { silentLog } from "../src/index.js";

/*
 * Registrations and worker functions across instances when Redis misbehaves, on a
 * redis-server of our own (the shared one must not be disturbed): subscriber connections
 * cut, and Redis restarted without its data.
 */

const keyPrefix = uniquePrefix("fleet-faults");
let redis: RedisServer;
const servers: RunningServer[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
});

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
  await redis?.stop();
});

async function instance(): Promise<RunningServer> {
  const backend = await connectRedisBackend({ url: redis.url, keyPrefix, instanceTtlMs: 1500, commandTimeoutMs: 2000 });
  const server = await startServer({ backend, log: silentLog });
  servers.push(server);
  return server;
}

function offers(on: RunningServer, functionId: string): Promise<void> {
  return eventually(() => expect(on.server.functions.listFunctions().map((f) => f.functionId)).toContain(functionId), 10_000);
}

describe("registrations and worker functions across instances", () => {
  it("a change made while an instance's subscriber connection is down reaches it when the connection is back", async () => {
    const [a, b] = await Promise.all([instance(), instance()]);
    a.server.functions.registerWorkerFunction("faults::echo", { invoke: async (_id, payload) => payload });
    await offers(b, "faults::echo");

    const admin = redisClient(redis.url);
    try {
      expect(await admin.call("CLIENT", "KILL", "TYPE", "pubsub")).toBeGreaterThan(0);
      // The cut connections reconnect after 50 ms at the earliest; this lands before.
      await a.server.functions.registerTrigger({ triggerId: "while-cut", type: "stream", functionId: "faults::echo", config: { streamName: "s" } });
    } finally {
      await admin.quit();
    }
    await eventually(() => expect(b.server.functions.listTriggers().map((t) => t.triggerId)).toContain("while-cut"));
    // Both instances' call channels are subscribed again.
    await eventually(async () => expect(await b.server.invoke("faults::echo", [1], 2000)).toEqual([1]));
  });

  it("while Redis is away, registering fails and calls elsewhere fail at once; afterwards workers are announced again", async () => {
    const [a, b] = await Promise.all([instance(), instance()]);
    a.server.functions.registerWorkerFunction("faults::after", { invoke: async () => "served" });
    await offers(b, "faults::after");

    await redis.kill();
    await expect(b.server.functions.registerTrigger({ type: "stream", functionId: "faults::after", config: { streamName: "s" } })).rejects.toMatchObject({
      code: ErrorCode.Unavailable,
    });
    await expect(b.server.invoke("faults::after", null, 30_000)).rejects.toMatchObject({ code: ErrorCode.Unavailable });

    // Restarted without data: the worker's instance puts its entry back on its next renewal.
    await redis.restart();
    const admin = redisClient(redis.url);
    try {
      await eventually(async () => expect(await admin.exists(`${keyPrefix}{registrations}:hosted`)).toBe(1), 10_000);
    } finally {
      await admin.quit();
    }
    await offers(b, "faults::after");
    await eventually(async () => expect(await b.server.invoke("faults::after", null, 2000)).toBe("served"), 10_000);
  });
});
