/**
 * The iii worker protocol, driven by the real npm package `iii-sdk` (0.22), unchanged
 * and with its default options, pointed at the server's WebSocket URL.
 */
import { fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { registerWorker, type IIIClient } from "iii-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JsonObject } from "../src/index.js";
import { startServer, type RunningServer } from "./support/server.js";
import { eventOf, join, openSocket, wsUrl, type TestSocket } from "./support/ws-client.js";

const PAGE_ORIGIN = "http://app.test";
const FUNCTION_TIMEOUT_MS = 500;

let running: RunningServer;
let backend: IIIClient;
const workers: IIIClient[] = [];
const sockets: TestSocket[] = [];

/**
 * The first worker keeps the SDK's defaults (its telemetry goes to the server's
 * `/otel`, which discards it); the others turn telemetry off, because the SDK keeps
 * one telemetry connection per process and would orphan the earlier ones.
 */
function worker(path: string, options: Parameters<typeof registerWorker>[1] = {}): IIIClient {
  const defaults = workers.length === 0 ? {} : { otel: { enabled: false } };
  const client = registerWorker(wsUrl(running.url, path), { workerName: "test", ...defaults, ...options });
  workers.push(client);
  return client;
}

async function connect(path = "/"): Promise<TestSocket> {
  const socket = await openSocket(wsUrl(running.url, path));
  sockets.push(socket);
  return socket;
}

const workerFunctions = () => running.server.functions.listFunctions().filter((f) => f.kind === "worker").map((f) => f.functionId);
const triggerFunctions = () => running.server.functions.listTriggers().map((t) => `${t.type} ${t.functionId}`);

beforeAll(async () => {
  running = await startServer({ allowedOrigins: [PAGE_ORIGIN], functions: { functionTimeoutMs: FUNCTION_TIMEOUT_MS } });
  // On "/", as the reference's engine serves it: the first message selects the worker protocol.
  backend = worker("/");
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.shutdown()));
  await Promise.all(sockets.map((s) => s.close()));
  await running.stop();
});

describe("iii-sdk against the worker protocol", () => {
  it("calls every stream::* function with snake_case inputs and gets the reference's result shapes", async () => {
    const call = (function_id: string, payload: unknown) => backend.trigger({ function_id, payload });
    const key = { stream_name: "todo", group_id: "g1" };
    expect(await call("stream::set", { ...key, item_id: "a", data: { id: "a", n: 1 } })).toEqual({ old_value: null, new_value: { id: "a", n: 1 } });
    expect(await call("stream::set", { ...key, item_id: "a", data: { id: "a", n: 2 } })).toEqual({
      old_value: { id: "a", n: 1 },
      new_value: { id: "a", n: 2 },
    });
    expect(await call("stream::get", { ...key, item_id: "a" })).toEqual({ id: "a", n: 2 });
    expect(await call("stream::get", { ...key, item_id: "nope" })).toBeUndefined();

    const updated = await call("stream::update", {
      ...key,
      item_id: "a",
      ops: [
        { type: "increment", path: "n", by: 5 },
        { type: "append", path: ["tags"], value: 1 },
        { type: "increment", path: "id", by: 1 },
      ],
    });
    expect(updated).toEqual({
      old_value: { id: "a", n: 2 },
      new_value: { id: "a", n: 7, tags: [1] },
      errors: [{ op_index: 2, code: "increment.not_number", message: expect.any(String) }],
    });
    const clean = await call("stream::update", { ...key, item_id: "b", ops: [{ type: "set", path: "", value: { id: "b" } }] });
    // `errors` is left out when empty.
    expect(clean).toEqual({ old_value: null, new_value: { id: "b" } });

    expect(await call("stream::list", key)).toEqual([{ id: "a", n: 7, tags: [1] }, { id: "b" }]);
    await call("stream::set", { stream_name: "todo", group_id: "g2", item_id: "c", data: 1 });
    expect(await call("stream::list_groups", { stream_name: "todo" })).toEqual(["g1", "g2"]);
    const all = (await call("stream::list_all", {})) as { stream: Array<{ id: string; groups: string[] }>; count: number };
    expect(all.stream).toContainEqual({ id: "todo", groups: ["g1", "g2"] });
    expect(all.count).toBe(all.stream.length);
    expect(await call("stream::send", { ...key, type: "ping", data: { at: 1 } })).toBeNull();
    expect(await call("stream::delete", { ...key, item_id: "b" })).toEqual({ old_value: { id: "b" } });
    expect(await call("stream::delete", { ...key, item_id: "b" })).toEqual({ old_value: null });
  });

  it("answers unknown functions, bad input and invalid names with {code, message}", async () => {
    await expect(backend.trigger({ function_id: "nope::nothing", payload: {} })).rejects.toMatchObject({ code: "function_not_found" });
    const missing = backend.trigger({ function_id: "stream::get", payload: { stream_name: "todo", group_id: "g1" } });
    await expect(missing).rejects.toMatchObject({
      code: "deserialization_error",
      message: expect.stringContaining("Failed to deserialize input for stream::get: missing field `item_id`"),
    });
    const badOp = backend.trigger({ function_id: "stream::update", payload: { stream_name: "t", group_id: "g", item_id: "i", ops: [{ type: "explode" }] } });
    await expect(badOp).rejects.toMatchObject({ code: "deserialization_error" });
    await expect(backend.trigger({ function_id: "stream::list", payload: { stream_name: "", group_id: "g" } })).rejects.toMatchObject({ code: "invalid_argument" });
  });

  it("lets a browser connection invoke only the allowed functions", async () => {
    // A page's connection carries an Origin header: it may read, not write.
    const page = worker("/worker", { headers: { origin: PAGE_ORIGIN } });
    expect(await page.trigger({ function_id: "stream::get", payload: { stream_name: "todo", group_id: "g1", item_id: "a" } })).toMatchObject({ id: "a" });
    const write = page.trigger({ function_id: "stream::set", payload: { stream_name: "todo", group_id: "g1", item_id: "z", data: 1 } });
    await expect(write).rejects.toMatchObject({ code: "forbidden" });
    expect(await backend.trigger({ function_id: "stream::get", payload: { stream_name: "todo", group_id: "g1", item_id: "z" } })).toBeUndefined();

    // Its stream trigger works, on a function private to the connection; a join gate is refused.
    const seen: JsonObject[] = [];
    page.registerFunction("ui::on-change", async (payload: JsonObject) => void seen.push(payload));
    page.registerTrigger({ type: "stream", function_id: "ui::on-change", config: { stream_name: "todo", group_id: "g3" } });
    page.registerTrigger({ type: "stream:join", function_id: "ui::on-change", config: {} });
    await expect.poll(triggerFunctions).toContainEqual(expect.stringMatching(/^stream ws-[0-9a-f]{8}-\d+\/ui::on-change$/));
    expect(triggerFunctions().filter((t) => t.startsWith("stream:join"))).toEqual([]);
    await backend.trigger({ function_id: "stream::set", payload: { stream_name: "todo", group_id: "g3", item_id: "p", data: "hi" } });
    await expect.poll(() => seen).toEqual([expect.objectContaining({ groupId: "g3", id: "p", event: { type: "create", data: "hi" } })]);
    await page.shutdown();
  });

  it("with API keys configured, lets only a worker that presents one write", async () => {
    const keyed = await startServer({ apiKeys: ["worker-key-0123456789"] });
    const payload = { stream_name: "keyed", group_id: "g", item_id: "i", data: 1 };
    const url = wsUrl(keyed.url, "/worker");
    const anonymous = registerWorker(url, { otel: { enabled: false } });
    const trusted = registerWorker(url, { otel: { enabled: false }, headers: { authorization: "Bearer worker-key-0123456789" } });
    try {
      await expect(anonymous.trigger({ function_id: "stream::set", payload })).rejects.toMatchObject({ code: "forbidden" });
      expect(await trusted.trigger({ function_id: "stream::set", payload })).toEqual({ old_value: null, new_value: 1 });
      // Reads need a key too when keys are configured (see access-keyed-reads).
      await expect(anonymous.trigger({ function_id: "stream::list", payload })).rejects.toMatchObject({ code: "forbidden" });
      expect(await trusted.trigger({ function_id: "stream::list", payload })).toEqual([1]);
    } finally {
      await Promise.all([anonymous.shutdown(), trusted.shutdown()]);
      await keyed.stop();
    }
  });

  it("delivers changes to a worker's function through a stream trigger", async () => {
    const changes: JsonObject[] = [];
    backend.registerFunction("app::on-change", async (payload: JsonObject) => {
      changes.push(payload);
      return null;
    });
    backend.registerTrigger({ type: "stream", function_id: "app::on-change", config: { stream_name: "orders" } });
    await expect.poll(triggerFunctions).toContain("stream app::on-change");
    expect(workerFunctions()).toContain("app::on-change");

    const client = running.client();
    await client.set({ streamName: "orders", groupId: "eu", itemId: "o1", data: fromJson(ValueSchema, { total: 3 }) });
    await client.delete({ streamName: "orders", groupId: "eu", itemId: "o1" });
    await expect.poll(() => changes.length).toBe(2);
    expect(changes).toEqual([
      {
        type: "stream",
        timestamp: expect.any(Number),
        streamName: "orders",
        groupId: "eu",
        id: "o1",
        event: { type: "create", data: { total: 3 } },
        offset: 1,
        revision: 1,
        // A worker's trigger stays at most once, but its calls carry the same delivery fields as any other.
        delivery_id: expect.stringMatching(/\/orders\/eu\/1$/),
        attempt: 1,
      },
      expect.objectContaining({ id: "o1", event: { type: "delete", data: { total: 3 } }, offset: 2, attempt: 1 }),
    ]);
  });

  it("gates stream-socket joins with a worker's stream:join handler and tells it about leaves", async () => {
    const leaves: JsonObject[] = [];
    backend.registerFunction("app::gate", async (join: JsonObject) => ({ unauthorized: join.group_id === "private" }));
    backend.registerFunction("app::left", async (leave: JsonObject) => void leaves.push(leave));
    backend.registerTrigger({ type: "stream:join", function_id: "app::gate", config: { stream_name: "todo" } });
    backend.registerTrigger({ type: "stream:leave", function_id: "app::left", config: { stream_name: "todo" } });
    await expect.poll(triggerFunctions).toEqual(expect.arrayContaining(["stream:join app::gate", "stream:leave app::left"]));

    const socket = await connect();
    socket.send(join("no", "todo", "private"));
    expect(await socket.next(eventOf("no", "unauthorized"))).toMatchObject({ streamName: "todo", groupId: "private", id: null });
    socket.send(join("yes", "todo", "g1"));
    expect(await socket.next(eventOf("yes", "sync"))).toMatchObject({ event: { data: [{ id: "a", n: 7, tags: [1] }] } });
    socket.send({ type: "leave", data: { subscriptionId: "yes", streamName: "todo", groupId: "g1" } });
    await expect.poll(() => leaves).toEqual([expect.objectContaining({ subscription_id: "yes", stream_name: "todo", group_id: "g1", id: null, context: null })]);
  });

  it("refuses a join when the worker's gate does not answer in time (fail closed)", async () => {
    const slow = worker("/worker");
    slow.registerFunction("slow::gate", () => new Promise((resolve) => setTimeout(() => resolve(null), FUNCTION_TIMEOUT_MS * 3)));
    slow.registerTrigger({ type: "stream:join", function_id: "slow::gate", config: { stream_name: "slow" } });
    await expect.poll(triggerFunctions).toContain("stream:join slow::gate");
    const socket = await connect();
    socket.send(join("late", "slow", "g"));
    await socket.next(eventOf("late", "unauthorized"));
    const stats = running.server.functions.listTriggers().find((t) => t.functionId === "slow::gate")!.stats;
    expect(stats.timeouts).toBe(1);
    await slow.shutdown();
  });

  it("removes a worker's functions and triggers when it disconnects", async () => {
    expect(workerFunctions()).toEqual(expect.arrayContaining(["app::on-change", "app::gate", "app::left"]));
    await backend.shutdown();
    await expect.poll(workerFunctions).toEqual([]);
    expect(running.server.functions.listTriggers()).toEqual([]);
    // Its gate is gone with it.
    const socket = await connect();
    socket.send(join("now", "todo", "private"));
    await socket.next(eventOf("now", "sync"));
  });
});
