/**
 * A worker's message over `max_message_bytes` (issue 20 item 4). An oversized
 * `stream::set` from the iii SDK used to close the connection with 4413: the SDK
 * reconnected without an answer, and the call hung until its own 30 s timeout. Now
 * an invocation gets an `invocationresult` error it can read, an oversized answer fails
 * the call it answers, and the connection goes on; only a frame beyond what the bridge
 * reads at all (four times the limit) still closes it with 4413.
 */
import { registerWorker, type IIIClient } from "iii-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RecordingLog, type JsonObject } from "../src/index.js";
import { startServer, type RunningServer } from "./support/server.js";
import { join, openSocket, wsUrl, type TestSocket } from "./support/ws-client.js";

const MAX_BYTES = 64 * 1024;
/** Long enough that a call that got no answer cannot pass for a refused one. */
const SDK_TIMEOUT_MS = 20_000;

let running: RunningServer;
const sockets: TestSocket[] = [];
const workers: IIIClient[] = [];
const log = new RecordingLog("warn");

beforeAll(async () => {
  running = await startServer({ maxMessageBytes: MAX_BYTES, log, functions: { functionTimeoutMs: 10_000 } });
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.shutdown()));
  await Promise.all(sockets.map((s) => s.close()));
  await running.stop();
});

async function worker(path = "/worker"): Promise<TestSocket> {
  const socket = await openSocket(wsUrl(running.url, path));
  sockets.push(socket);
  await socket.next((m) => m.type === "workerregistered");
  return socket;
}

const resultOf = (id: string) => (m: JsonObject) => m.type === "invocationresult" && m.invocation_id === id;
const set = (id: string, itemId: string, data: unknown) => ({
  type: "invokefunction",
  invocation_id: id,
  function_id: "stream::set",
  data: { stream_name: "big", group_id: "g", item_id: itemId, data },
});

describe("the iii SDK", () => {
  it("gets a readable error for an oversized stream::set, and its next call on the same connection succeeds", async () => {
    const client = registerWorker(wsUrl(running.url, "/"), { workerName: "oversized", otel: { enabled: false }, invocationTimeoutMs: SDK_TIMEOUT_MS });
    workers.push(client);
    const trigger = (payload: unknown) => client.trigger({ function_id: "stream::set", payload });
    // A normal call first, so that the SDK is connected.
    await trigger({ stream_name: "big", group_id: "sdk", item_id: "small", data: 1 });
    // ws is the SDK's socket (a private field): the same object after the refusal means no reconnect.
    const socket = (client as unknown as { ws: unknown }).ws;
    expect(socket).toBeDefined();

    const refused = await trigger({ stream_name: "big", group_id: "sdk", item_id: "huge", data: "x".repeat(MAX_BYTES * 2) }).catch((error: unknown) => error);
    expect(refused).toMatchObject({ name: "InvocationError", code: "resource_exhausted" });
    expect((refused as Error).message).toMatch(/^resource_exhausted: the message is \d+ bytes, more than max_message_bytes \(65536\); nothing was done$/);

    expect(await trigger({ stream_name: "big", group_id: "sdk", item_id: "after", data: 2 })).toEqual({ old_value: null, new_value: 2 });
    expect((client as unknown as { ws: unknown }).ws).toBe(socket);
    // Nothing of the refused write was stored.
    expect(await client.trigger({ function_id: "stream::get", payload: { stream_name: "big", group_id: "sdk", item_id: "huge" } })).toBeUndefined();
  });
});

describe("the worker protocol", () => {
  it("answers an oversized invokefunction with resource_exhausted and keeps the connection", async () => {
    const socket = await worker();
    socket.send(set("1", "a", "x".repeat(MAX_BYTES)));
    expect(await socket.next(resultOf("1"))).toEqual({
      type: "invocationresult",
      invocation_id: "1",
      function_id: "stream::set",
      error: { code: "resource_exhausted", message: expect.stringMatching(/more than max_message_bytes \(65536\); nothing was done/) },
    });
    socket.send(set("2", "a", "fits"));
    expect(await socket.next(resultOf("2"))).toMatchObject({ result: { old_value: null, new_value: "fits" } });
  });

  it("does the same when the oversized invocation is the first message on /", async () => {
    const socket = await openSocket(wsUrl(running.url, "/"));
    sockets.push(socket);
    socket.send(set("1", "first", "x".repeat(MAX_BYTES)));
    expect(await socket.next(resultOf("1"))).toMatchObject({ error: { code: "resource_exhausted" } });
    expect(socket.messages[0]).toMatchObject({ type: "workerregistered" });
  });

  it("fails the call an oversized invocationresult answers, and keeps the connection", async () => {
    const socket = await worker();
    socket.send({ type: "registerfunction", id: "big::answer" });
    await expect.poll(() => running.server.functions.listFunctions().map((f) => f.functionId)).toContain("big::answer");
    const calls = [1, 2].map((n) => running.server.invoke("big::answer", n).then((result) => ({ result }), (error: { code?: string; message?: string }) => error));
    const invoked = await socket.next((m) => m.type === "invokefunction" && m.data === 1);
    socket.send({ type: "invocationresult", invocation_id: invoked.invocation_id, result: "x".repeat(MAX_BYTES) });
    expect(await calls[0]).toMatchObject({ code: "resource_exhausted", message: expect.stringMatching(/answered with a message of \d+ bytes, more than max_message_bytes/) });
    const second = await socket.next((m) => m.type === "invokefunction" && m.data === 2);
    socket.send({ type: "invocationresult", invocation_id: second.invocation_id, result: "small" });
    expect(await calls[1]).toEqual({ result: "small" });
  });

  it("logs an oversized fire-and-forget invocation, which has no one to answer, and keeps the connection", async () => {
    const socket = await worker();
    socket.send({ type: "invokefunction", function_id: "stream::set", data: { pad: "x".repeat(MAX_BYTES) } });
    await expect.poll(() => log.find("oversized fire-and-forget call")).toEqual([
      { level: "warn", message: expect.stringMatching(/more than max_message_bytes \(65536\); nothing was done/), fields: expect.objectContaining({ function_id: "stream::set" }) },
    ]);
    socket.send(set("3", "b", 3));
    expect(await socket.next(resultOf("3"))).toMatchObject({ result: { new_value: 3 } });
  });

  it("closes with 4413 for an oversized message that has no answer (a registration)", async () => {
    const socket = await worker();
    socket.send({ type: "registerfunction", id: "big::schema", description: "x".repeat(MAX_BYTES) });
    expect((await socket.closed).code).toBe(4413);
  });

  it("closes with 4413 for a frame beyond four times the limit, which is not read at all", async () => {
    const socket = await worker();
    socket.send(set("4", "c", "x".repeat(MAX_BYTES * 4)));
    expect((await socket.closed).code).toBe(4413);
    expect(socket.messages.some(resultOf("4"))).toBe(false);
  });

  it("still closes a stream socket with 4413 for an oversized join", async () => {
    const socket = await openSocket(wsUrl(running.url, "/"));
    sockets.push(socket);
    socket.send(join("a", "s", "g", { pad: "x".repeat(MAX_BYTES) }));
    expect((await socket.closed).code).toBe(4413);
  });
});
