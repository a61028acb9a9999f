import { spawn } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { connectRedisBackend, ErrorCode, type JsonValue } from "../src/index.js";
import type { FunctionInvoker } from "../src/functions/types.js";
import { value } from "./conformance/proto-values.js";
import { uniqueNames } from "./conformance/unique-names.js";
import { deferred, eventually } from "./support/function-server.js";
import { PROJECT_ROOT } from "./support/process.js";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./support/redis.js";
import { startServer, type RunningServer } from "./support/server.js";
import { RecordingLog } from "../src/index.js";

/*
 * Worker functions across instances: servers in this process (and one in a child process,
 * to be killed) on the shared Redis, whose worker functions are offered through the seam
 * the WebSocket bridge uses. A write on one instance whose trigger names a worker
 * connected to another is carried out there, through Redis.
 */

const keyPrefix = uniquePrefix("fleet-workers");
const streamName = uniqueNames("redis-fleet-workers");
/** Short, so that a killed host leaves the fleet within the test. */
const INSTANCE_TTL_MS = 1500;
const cleanup: Array<() => Promise<unknown>> = [];

afterAll(async () => {
  for (const close of cleanup.reverse()) await close();
  await deleteKeys(keyPrefix);
});

interface Instance {
  running: RunningServer;
  logs: RecordingLog;
}

async function instance(): Promise<Instance> {
  const backend = await connectRedisBackend({ url: REDIS_URL, keyPrefix, instanceTtlMs: INSTANCE_TTL_MS });
  const logs = new RecordingLog("warn");
  // A long function timeout: a call that does not fail fast would fail the test's waits.
  const running = await startServer({ backend, functions: { functionTimeoutMs: 30_000 }, log: logs });
  cleanup.push(() => running.stop());
  return { running, logs };
}

function worker(invoke: (payload: JsonValue, signal: AbortSignal) => Promise<JsonValue | undefined>): FunctionInvoker {
  return { invoke: (_functionId, payload, signal) => invoke(payload, signal) };
}

/** Waits until the instance offers the function as a worker function. */
async function offers(on: Instance, functionId: string, expected = true): Promise<void> {
  await eventually(() => {
    const listed = on.running.server.functions.listFunctions().find((f) => f.functionId === functionId);
    expect(listed?.kind === "worker").toBe(expected);
  }, 10_000);
}

function statsOf(on: Instance, triggerId: string) {
  return on.running.server.functions.listTriggers().find((t) => t.triggerId === triggerId)!.stats;
}

describe("registrations in Redis", () => {
  it("outlive the instance that made them: one started later loads them", async () => {
    const first = await instance();
    const triggerId = await first.running.server.functions.registerTrigger({ type: "stream", functionId: "fleet::later", config: { streamName: "s" } });
    await first.running.server.functions.registerRemoteFunction({ functionId: "fleet::later", url: "http://127.0.0.1:9" });
    await first.running.stop();
    const later = await instance();
    expect(later.running.server.functions.listTriggers().map((t) => t.triggerId)).toContain(triggerId);
    expect(later.running.server.functions.listFunctions()).toContainEqual({ functionId: "fleet::later", kind: "remote", url: "http://127.0.0.1:9" });
  });
});

describe("a worker connected to another instance", () => {
  it("is called through its instance, once per write, whichever instance took the write", async () => {
    const [host, other] = await Promise.all([instance(), instance()]);
    const s = streamName("once");
    const audited: Array<{ offset: number; writer: string }> = [];
    host.running.server.functions.registerWorkerFunction(
      "fleet::audit",
      worker(async (payload) => {
        const { offset, event } = payload as { offset: number; event: { data: { writer: string } } };
        audited.push({ offset, writer: event.data.writer });
        return null;
      }),
    );
    // A condition on the worker's instance, whose result decides on the other one.
    host.running.server.functions.registerWorkerFunction(
      "fleet::creates-only",
      worker(async (payload) => (payload as { event: { type: string } }).event.type === "create"),
    );
    const triggerId = await other.running.server.functions.registerTrigger({
      type: "stream",
      functionId: "fleet::audit",
      config: { streamName: s, conditionFunctionId: "fleet::creates-only" },
    });
    await offers(other, "fleet::audit");
    await offers(other, "fleet::creates-only");
    await eventually(() => expect(host.running.server.functions.listTriggers().map((t) => t.triggerId)).toContain(triggerId));

    const write = (on: Instance, itemId: string) =>
      on.running.client().set({ streamName: s, groupId: "g", itemId, data: value({ writer: on === host ? "host" : "other" }) });
    await Promise.all(Array.from({ length: 30 }, (_, i) => write(i % 3 ? other : host, `item-${i % 20}`)));
    // Items 0..19 were created (20 calls), items 0..9 then overwritten (skipped by the condition).
    await eventually(() => expect(audited).toHaveLength(20));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(audited).toHaveLength(20);
    expect(new Set(audited.map((a) => a.offset)).size).toBe(20);
    const fromOther = audited.filter((a) => a.writer === "other").length;
    // Each instance ran the trigger for the writes it took: the worker's instance locally, the other through it.
    expect(statsOf(other, triggerId)).toMatchObject({ calls: fromOther, failures: 0 });
    expect(statsOf(host, triggerId)).toMatchObject({ calls: 20 - fromOther, failures: 0 });
    expect(statsOf(other, triggerId).skipped + statsOf(host, triggerId).skipped).toBe(10);
    expect(fromOther).toBeGreaterThan(0);
    expect(other.logs.records).toEqual([]);
  });

  it("a restricted connection's function is called through its instance but listed by none", async () => {
    const [host, other] = await Promise.all([instance(), instance()]);
    const s = streamName("unlisted");
    const calls: number[] = [];
    const functions = host.running.server.functions;
    functions.registerWorkerFunction("fleet::listed-marker", worker(async () => null));
    functions.registerWorkerFunction(
      "page-1/fleet::private",
      worker(async (payload) => {
        calls.push((payload as { offset: number }).offset);
        return null;
      }),
      { listed: false },
    );
    await functions.registerTrigger({ type: "stream", functionId: "page-1/fleet::private", config: { streamName: s } });
    // Once the marker is offered, the private function is known to the other instance too.
    await offers(other, "fleet::listed-marker");
    const listedIds = (on: Instance) => on.running.server.functions.listFunctions().map((f) => f.functionId);
    expect(listedIds(other)).not.toContain("page-1/fleet::private");
    expect(listedIds(host)).not.toContain("page-1/fleet::private");
    await other.running.client().set({ streamName: s, groupId: "g", itemId: "i", data: value(1) });
    await eventually(() => expect(calls).toEqual([1]));
  });

  it("passes results and failures back, and cancels the call on its instance when the caller gives up", async () => {
    const [host, other] = await Promise.all([instance(), instance()]);
    const cancelled = deferred<unknown>();
    const functions = host.running.server.functions;
    functions.registerWorkerFunction("fleet::echo", worker(async (payload) => ({ echoed: payload })));
    functions.registerWorkerFunction(
      "fleet::fail",
      worker(async () => {
        throw new Error("the worker says no");
      }),
    );
    functions.registerWorkerFunction(
      "fleet::hang",
      worker(
        (_payload, signal) =>
          new Promise(() => signal.addEventListener("abort", () => cancelled.resolve(signal.reason), { once: true })),
      ),
    );
    await offers(other, "fleet::hang");
    const server = other.running.server;

    const payload = { big: 9007199254740991, nested: [[], {}, null, "é"] };
    expect(await server.invoke("fleet::echo", payload, 5000)).toEqual({ echoed: payload });
    await expect(server.invoke("fleet::fail", {}, 5000)).rejects.toMatchObject({
      code: ErrorCode.Internal,
      message: expect.stringContaining("the worker says no"),
    });
    await expect(server.invoke("fleet::hang", {}, 200)).rejects.toMatchObject({ code: ErrorCode.DeadlineExceeded });
    expect(await cancelled.promise).toMatchObject({ code: ErrorCode.Aborted });
  });
});

describe("when the instance of a worker goes away", () => {
  it("stopping it fails its calls at once: those in flight with UNAVAILABLE, later ones as unknown", async () => {
    const [host, other] = await Promise.all([instance(), instance()]);
    const s = streamName("stop");
    const started = deferred();
    host.running.server.functions.registerWorkerFunction(
      "fleet::slow",
      worker((_payload, signal) => {
        started.resolve();
        return new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }));
      }),
    );
    const triggerId = await other.running.server.functions.registerTrigger({ type: "stream", functionId: "fleet::slow", config: { streamName: s } });
    await offers(other, "fleet::slow");

    await other.running.client().set({ streamName: s, groupId: "g", itemId: "a", data: value(1) });
    await started.promise;
    await host.running.stop();
    await eventually(() => expect(statsOf(other, triggerId)).toMatchObject({ calls: 1, failures: 1, timeouts: 0 }));
    expect(other.logs.records.map((r) => r.fields.error).join("\n")).toContain("shutting down");

    await offers(other, "fleet::slow", false);
    await other.running.client().set({ streamName: s, groupId: "g", itemId: "a", data: value(2) });
    await eventually(() => expect(statsOf(other, triggerId)).toMatchObject({ calls: 2, failures: 2, timeouts: 0 }));
    expect(other.logs.records.at(-1)?.fields).toMatchObject({ function_id: "fleet::slow", error: expect.stringContaining('function "fleet::slow" is not registered') });
  });

  it("killing its process fails later calls at once, and its functions leave the fleet within the TTL", async () => {
    const other = await instance();
    const s = streamName("kill");
    const host = spawn(process.execPath, ["--import", "tsx", "test/support/fleet-worker-host.ts"], {
      cwd: PROJECT_ROOT,
      env: {
        ...process.env,
        FLEET_REDIS_URL: REDIS_URL,
        FLEET_KEY_PREFIX: keyPrefix,
        FLEET_INSTANCE_TTL_MS: String(INSTANCE_TTL_MS),
        FLEET_FUNCTION_ID: "fleet::in-child",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = new Promise((resolve) => host.once("exit", resolve));
    cleanup.push(async () => {
      host.kill("SIGKILL");
      await exited;
    });
    let output = "";
    host.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    host.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));

    const triggerId = await other.running.server.functions.registerTrigger({ type: "stream", functionId: "fleet::in-child", config: { streamName: s } });
    await offers(other, "fleet::in-child");
    await other.running.client().set({ streamName: s, groupId: "g", itemId: "a", data: value(1) });
    await eventually(() => expect(output).toMatch(/called \{.*"offset":1,/));
    expect(statsOf(other, triggerId)).toMatchObject({ calls: 1, failures: 0 });

    host.kill("SIGKILL");
    await exited;
    await other.running.client().set({ streamName: s, groupId: "g", itemId: "a", data: value(2) });
    await eventually(() => expect(statsOf(other, triggerId)).toMatchObject({ calls: 2, failures: 1, timeouts: 0 }));
    expect(other.logs.records.at(-1)?.fields).toMatchObject({ function_id: "fleet::in-child", error: expect.stringContaining("is not reachable") });
    await offers(other, "fleet::in-child", false);
    expect(output.match(/called/g)).toHaveLength(1);
  });
});
