/**
 * The client library's TriggerService calls (listFunctions, listTriggers, as the console
 * uses them) and an item's expiry in `get`: against a real server with API keys.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { createStreamClient, ErrorCode, type StreamClient } from "../src/client/node.js";
import { silentLog } from "../src/core/log.js";
import { startServer, type RunningServer } from "./support/server.js";

const KEY = "client-registrations-key-0001";
let running: RunningServer;
let client: StreamClient;

beforeAll(async () => {
  running = await startServer({
    apiKeys: [KEY],
    log: silentLog,
    functions: { triggers: [{ triggerId: "count", type: "stream", functionId: "counter", config: { streamName: "s", groupId: "g" } }] },
  });
  running.server.registerFunction("counter", async () => null);
  client = createStreamClient({ baseUrl: running.url, apiKey: KEY });
});

afterAll(async () => {
  client.close();
  await running.stop();
});

it("lists the functions and the triggers with their counters as numbers", async () => {
  expect(await client.listFunctions()).toEqual([{ functionId: "counter", kind: "in_process", url: "" }]);
  await client.set("s", "g", "a", 1);
  await expect.poll(async () => (await client.listTriggers())[0].stats.calls).toBe(1);
  const [trigger] = await client.listTriggers();
  expect(trigger).toMatchObject({ triggerId: "count", type: "stream", functionId: "counter", config: { streamName: "s", groupId: "g", itemId: "", conditionFunctionId: "" }, delivery: "at_most_once", lag: 0, deadLetters: 0 });
  expect(trigger.stats).toMatchObject({ calls: 1, failures: 0, timeouts: 0, skipped: 0, dropped: 0 });
  for (const value of Object.values(trigger.stats)) expect(typeof value).toBe("number");
});

it("refuses both without a key, as unauthenticated", async () => {
  const keyless = createStreamClient({ baseUrl: running.url });
  try {
    await expect(keyless.listFunctions()).rejects.toMatchObject({ code: ErrorCode.Unauthenticated });
    await expect(keyless.listTriggers()).rejects.toMatchObject({ code: ErrorCode.Unauthenticated });
  } finally {
    keyless.close();
  }
});

it("gives an item's expiry in get, and none for an item without a TTL", async () => {
  const before = Date.now();
  const response = await fetch(`${running.url}/iii.stream.v1.StreamService/Set`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ stream_name: "t", group_id: "g", item_id: "brief", data: 1, ttl_ms: 60_000 }),
  });
  expect(response.status).toBe(200);
  const brief = await client.get("t", "g", "brief");
  expect(brief?.expiresAtMs).toBeGreaterThanOrEqual(before + 60_000);
  await client.set("t", "g", "lasting", 2);
  expect(await client.get("t", "g", "lasting")).not.toHaveProperty("expiresAtMs");
});
