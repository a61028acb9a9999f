/**
 * What one worker connection may hold: functions, triggers and calls of its functions
 * in flight are bounded per connection, privileged or not, and registering many
 * triggers costs the server work linear in their number (not quadratic, which let one
 * keyless connection block the event loop for seconds).
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ConfigError } from "../src/cli/config.js";
import { configToOptions } from "../src/cli/config-to-options.js";
import { createStreamServer } from "../src/index.js";
import type { JsonObject } from "../src/index.js";
import { TriggerRegistry } from "../src/functions/trigger-registry.js";
import { startServer, type RunningServer } from "./support/server.js";
import { openSocket, wsUrl, type TestSocket } from "./support/ws-client.js";
import { silentLog } from "../src/index.js";

const KEY = "worker-limits-key-0123456789";

let running: RunningServer;
const sockets: TestSocket[] = [];

beforeAll(async () => {
  running = await startServer({
    apiKeys: [KEY],
    // A keyless connection may then read, so it can register the stream triggers whose limit is tested.
    publicReads: true,
    log: silentLog,
    functions: { functionTimeoutMs: 2000 },
    webSocket: { maxFunctionsPerConnection: 2, maxTriggersPerConnection: 3, maxInvocationsPerConnection: 2 },
  });
});

afterAll(async () => {
  await Promise.all(sockets.map((s) => s.close()));
  await running.stop();
});

async function worker(headers: Record<string, string> = { authorization: `Bearer ${KEY}` }): Promise<TestSocket> {
  const socket = await openSocket(wsUrl(running.url, "/worker"), { headers });
  sockets.push(socket);
  await socket.next((m) => m.type === "workerregistered");
  return socket;
}

const triggerReply = (id: string) => (m: JsonObject) => m.type === "triggerregistrationresult" && m.id === id;
const functionReply = (id: string) => (m: JsonObject) => m.type === "functionregistrationresult" && m.id === id;

function registerTrigger(socket: TestSocket, id: string, streamName = "limits"): Promise<JsonObject> {
  const from = socket.messages.length;
  socket.send({ type: "registertrigger", id, trigger_type: "stream", function_id: "w::f", config: { stream_name: streamName } });
  return socket.next(triggerReply(id), 5000, from);
}

describe("per-connection limits of the worker protocol", () => {
  it("refuses the trigger beyond the limit with resource_exhausted and registers nothing for it", async () => {
    const before = running.server.stats().triggers;
    const socket = await worker();
    for (const id of ["a", "b", "c"]) expect((await registerTrigger(socket, id)).error).toBeUndefined();
    expect(await registerTrigger(socket, "d")).toMatchObject({ error: { code: "resource_exhausted" } });
    expect(running.server.stats().triggers).toBe(before + 3);
    // Replacing one of its own triggers is no new trigger, so it is allowed at the limit.
    expect((await registerTrigger(socket, "a", "elsewhere")).error).toBeUndefined();
    // Removing one makes room again.
    socket.send({ type: "unregistertrigger", id: "b", trigger_type: "stream" });
    expect((await registerTrigger(socket, "d")).error).toBeUndefined();
    expect(running.server.stats().triggers).toBe(before + 3);
    await socket.close();
    await expect.poll(() => running.server.stats().triggers).toBe(before);
  });

  it("holds a keyless connection (restricted when keys are set) to the same trigger limit", async () => {
    const before = running.server.stats().triggers;
    const socket = await worker({});
    for (const id of ["a", "b", "c"]) expect((await registerTrigger(socket, id)).error).toBeUndefined();
    expect(await registerTrigger(socket, "d")).toMatchObject({ error: { code: "resource_exhausted" } });
    expect(running.server.stats().triggers).toBe(before + 3);
    await socket.close();
    await expect.poll(() => running.server.stats().triggers).toBe(before);
  });

  it("refuses the function beyond the limit with resource_exhausted and registers nothing for it", async () => {
    const before = running.server.stats().functions;
    const socket = await worker();
    for (const id of ["lim::a", "lim::b"]) socket.send({ type: "registerfunction", id });
    socket.send({ type: "registerfunction", id: "lim::c" });
    expect(await socket.next(functionReply("lim::c"))).toMatchObject({ error: { code: "resource_exhausted" } });
    expect(running.server.stats().functions).toBe(before + 2);
    expect(running.server.functions.listFunctions().map((f) => f.functionId)).not.toContain("lim::c");
    // Registering one of its own functions again replaces it.
    socket.send({ type: "registerfunction", id: "lim::a" });
    socket.send({ type: "unregisterfunction", id: "lim::b" });
    socket.send({ type: "registerfunction", id: "lim::c" });
    await expect.poll(() => running.server.functions.listFunctions().map((f) => f.functionId)).toContain("lim::c");
    expect(socket.messages.filter((m) => m.type === "functionregistrationresult")).toHaveLength(1);
    expect(running.server.stats().functions).toBe(before + 2);
    await socket.close();
    await expect.poll(() => running.server.stats().functions).toBe(before);
  });

  it("fails calls of a worker's functions beyond the in-flight limit with resource_exhausted", async () => {
    const socket = await worker();
    socket.send({ type: "registerfunction", id: "slow::never" });
    await expect.poll(() => running.server.functions.listFunctions().map((f) => f.functionId)).toContain("slow::never");
    // The worker never answers, so the first two calls stay in flight.
    const calls = [1, 2, 3].map((n) => running.server.invoke("slow::never", n).then(() => "answered", (error: { code?: string }) => error.code));
    expect(await calls[2]).toBe("resource_exhausted");
    await expect.poll(() => socket.messages.filter((m) => m.type === "invokefunction")).toHaveLength(2);
    await socket.close();
    expect(await Promise.all(calls.slice(0, 2))).toEqual(["unavailable", "unavailable"]);
  });
});

describe("configuring the worker limits", () => {
  it("reads max_worker_functions, max_worker_triggers and max_worker_invocations from the config file", () => {
    const path = join(mkdtempSync(join(tmpdir(), "worker-limits-")), "config.yaml");
    writeFileSync(path, "max_worker_functions: 5\nmax_worker_triggers: 6\nmax_worker_invocations: 7\n");
    expect(configToOptions({ config: path, adapter: "memory" }, {}).options.webSocket).toEqual({
      maxFunctionsPerConnection: 5,
      maxTriggersPerConnection: 6,
      maxInvocationsPerConnection: 7,
    });
    writeFileSync(path, "max_worker_triggers: 0\n");
    expect(() => configToOptions({ config: path, adapter: "memory" }, {})).toThrow(ConfigError);
  });

  it("refuses a limit that is not a positive integer when the server is created", () => {
    expect(() => createStreamServer({ webSocket: { maxTriggersPerConnection: 0 } })).toThrow("maxTriggersPerConnection");
  });
});

describe("the cost of a worker's triggers", () => {
  afterEach(() => vi.restoreAllMocks());

  it("is linear in their number: the trigger registry handles each one a bounded number of times", async () => {
    const n = 2000;
    const server = await startServer({ log: silentLog, webSocket: { maxTriggersPerConnection: n } });
    // Records handed to the registry, whatever the method: a whole list counts its length.
    let handled = 0;
    for (const name of Object.getOwnPropertyNames(TriggerRegistry.prototype)) {
      if (name === "constructor" || name === "matching" || name === "list") continue;
      const method = (TriggerRegistry.prototype as unknown as Record<string, unknown>)[name];
      if (typeof method !== "function") continue;
      vi.spyOn(TriggerRegistry.prototype as unknown as Record<string, (...args: unknown[]) => unknown>, name).mockImplementation(function (
        this: unknown,
        ...args: unknown[]
      ) {
        handled += args.reduce<number>((sum, arg) => sum + (Array.isArray(arg) ? arg.length : 0), 0) || 1;
        return (method as (...a: unknown[]) => unknown).apply(this, args);
      });
    }
    try {
      const socket = await openSocket(wsUrl(server.url, "/worker"));
      for (let i = 0; i < n; i++) {
        socket.send({ type: "registertrigger", id: `t${i}`, trigger_type: "stream", function_id: "w::f", config: { stream_name: `s${i % 7}` } });
      }
      await socket.next(triggerReply(`t${n - 1}`), 60_000);
      expect(server.server.stats().triggers).toBe(n);
      await socket.close();
      await expect.poll(() => server.server.stats().triggers, { timeout: 60_000 }).toBe(0);
      // A few calls per trigger (adding and indexing it, removing and unindexing it);
      // rebuilding on every change was about n * n = 4,000,000 here.
      expect(handled).toBeLessThanOrEqual(10 * n);
    } finally {
      vi.restoreAllMocks();
      await server.stop();
    }
  }, 120_000);
});
