import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, type JsonValue, MemoryItemStore, StreamError } from "../src/index.js";
import { FunctionRegistry } from "../src/functions/function-registry.js";
import { MemoryRegistrationStore } from "../src/adapters/memory/memory-registration-store.js";
import { FunctionKind, TriggerService } from "../gen/iii/stream/v1/triggers_pb.js";
import { deferred, eventually, startConnectFunctionServer, startPlainFunctionServer, type FunctionServer } from "./support/function-server.js";
import { startServer, transportFor, type RunningServer } from "./support/server.js";
import { json } from "./support/subscribe-view.js";
import { silentLog } from "../src/index.js";

const cleanup: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const close of cleanup.reverse()) await close();
});

async function functionServers(handle: (id: string, payload: JsonValue) => JsonValue | undefined | Promise<JsonValue | undefined>) {
  const connect = await startConnectFunctionServer(handle);
  const plain = await startPlainFunctionServer(handle);
  cleanup.push(connect.close, plain.close);
  return { connect, plain };
}

async function server(options: Parameters<typeof startServer>[0] = {}): Promise<RunningServer> {
  const running = await startServer(options);
  cleanup.push(running.stop);
  return running;
}

/** A backend of its own items over registrations shared with other servers. */
function sharing(registrations: MemoryRegistrationStore) {
  return { items: new MemoryItemStore(), registrations };
}

function triggerClient(running: RunningServer) {
  return createClient(TriggerService, transportFor(running.url, "connect-json-h1"));
}

async function codeOf(promise: Promise<unknown>): Promise<Code | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

describe("function registry", () => {
  let remote: { connect: FunctionServer; plain: FunctionServer };
  const release = deferred();
  beforeAll(async () => {
    remote = await functionServers(async (id, payload) => {
      if (id === "echo") return { echoed: payload };
      if (id === "nothing") return undefined;
      if (id === "null") return null;
      if (id === "hang") await release.promise;
      throw new Error(`boom from ${id}`);
    });
  });
  afterAll(() => release.resolve());

  it("calls an in-process function with its own copy of the payload", async () => {
    const registry = new FunctionRegistry();
    registry.registerInProcess("mutate", (payload) => {
      (payload as { n: number }).n = 99;
      return "ok";
    });
    const payload = { n: 1 };
    expect(await registry.invoke("mutate", payload, 1000)).toBe("ok");
    expect(payload).toEqual({ n: 1 });
  });

  it.each(["connect", "plain"] as const)("calls a remote function served by a %s server", async (kind) => {
    const registry = new FunctionRegistry();
    registry.replaceRemote([
      { functionId: "echo", url: remote[kind].url },
      { functionId: "nothing", url: remote[kind].url },
      { functionId: "null", url: remote[kind].url },
      { functionId: "fails", url: remote[kind].url },
    ]);
    const payload = { a: [1, "two", null, { b: true }], big: 2 ** 53 - 1 };
    expect(await registry.invoke("echo", payload, 5000)).toEqual({ echoed: payload });
    expect(await registry.invoke("nothing", {}, 5000)).toBeUndefined();
    expect(await registry.invoke("null", {}, 5000)).toBeNull();
    await expect(registry.invoke("fails", {}, 5000)).rejects.toThrow(/boom from fails|internal/i);
  });

  it("gives up on a call after its timeout, in process and remote", async () => {
    const registry = new FunctionRegistry();
    let aborted = false;
    registry.registerInProcess("hang-local", (_payload, signal) => {
      signal.addEventListener("abort", () => (aborted = true));
      return new Promise(() => undefined);
    });
    registry.replaceRemote([{ functionId: "hang", url: remote.plain.url }]);
    for (const id of ["hang-local", "hang"]) {
      const error = await registry.invoke(id, {}, 100).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StreamError);
      expect((error as StreamError).code).toBe(ErrorCode.DeadlineExceeded);
    }
    expect(aborted).toBe(true);
  });

  it("reports an unknown function as NOT_FOUND, and lets in-process functions shadow remote ones", async () => {
    const registry = new FunctionRegistry();
    await expect(registry.invoke("missing", {}, 100)).rejects.toMatchObject({ code: ErrorCode.NotFound });
    registry.replaceRemote([{ functionId: "echo", url: remote.connect.url }]);
    const remove = registry.registerInProcess("echo", () => "local");
    expect(await registry.invoke("echo", 1, 1000)).toBe("local");
    remove();
    expect(await registry.invoke("echo", 1, 5000)).toEqual({ echoed: 1 });
  });

  it("calls a worker function through the bridge seam until the worker leaves", async () => {
    const registry = new FunctionRegistry();
    const leave = registry.registerWorker("from-worker", { invoke: async (id, payload) => ({ id, payload }) });
    expect(registry.list()).toEqual([{ functionId: "from-worker", kind: "worker" }]);
    expect(await registry.invoke("from-worker", 7, 1000)).toEqual({ id: "from-worker", payload: 7 });
    leave();
    await expect(registry.invoke("from-worker", 7, 100)).rejects.toMatchObject({ code: ErrorCode.NotFound });
  });
});

describe("TriggerService: functions", () => {
  it("registers, lists and unregisters remote functions, validating them", async () => {
    // Any host: the loopback default without keys is tested in functions-url-validation.test.ts.
    const running = await server({ functions: { handlers: { "local::fn": () => null } }, allowedFunctionHosts: ["*"] });
    const client = triggerClient(running);
    await client.registerFunction({ functionId: "b::remote", url: "http://127.0.0.1:9/base" });
    await client.registerFunction({ functionId: "a::remote", url: "http://127.0.0.1:9" });
    // Registering again replaces the URL.
    await client.registerFunction({ functionId: "a::remote", url: "https://example.invalid" });
    const listed = (await client.listFunctions({})).functions.map(({ functionId, kind, url }) => ({ functionId, kind, url }));
    expect(listed).toEqual([
      { functionId: "a::remote", kind: FunctionKind.REMOTE, url: "https://example.invalid" },
      { functionId: "b::remote", kind: FunctionKind.REMOTE, url: "http://127.0.0.1:9/base" },
      { functionId: "local::fn", kind: FunctionKind.IN_PROCESS, url: "" },
    ]);
    expect((await client.unregisterFunction({ functionId: "a::remote" })).found).toBe(true);
    expect((await client.unregisterFunction({ functionId: "a::remote" })).found).toBe(false);

    expect(await codeOf(client.registerFunction({ functionId: "x", url: "not a url" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(client.registerFunction({ functionId: "x", url: "ftp://127.0.0.1/" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(client.registerFunction({ functionId: "", url: "http://127.0.0.1:9" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(client.registerFunction({ functionId: "local::fn", url: "http://127.0.0.1:9" }))).toBe(
      Code.FailedPrecondition,
    );
  });

  it("shares registrations between servers on one store and restores them on a new server", async () => {
    const calls: JsonValue[] = [];
    const { plain } = await functionServers((_id, payload) => {
      calls.push(payload);
      return null;
    });
    const store = new MemoryRegistrationStore();
    const first = await server({ backend: sharing(store) });
    const second = await server({ backend: sharing(store) });
    await triggerClient(first).registerFunction({ functionId: "audit", url: plain.url });
    const { triggerId } = await triggerClient(first).registerTrigger({
      type: "stream",
      functionId: "audit",
      config: { streamName: "shared" },
    });
    // The second server learnt of both through the store, and fires the trigger for its own writes.
    expect((await triggerClient(second).listTriggers({})).triggers.map((t) => t.triggerId)).toEqual([triggerId]);
    await second.client().set({ streamName: "shared", groupId: "g", itemId: "i", data: json(1) });
    await eventually(() => expect(calls).toHaveLength(1));

    await first.stop();
    await second.stop();
    const restarted = await server({ backend: sharing(store) });
    expect((await triggerClient(restarted).listFunctions({})).functions.map((f) => f.functionId)).toEqual(["audit"]);
    await restarted.client().set({ streamName: "shared", groupId: "g", itemId: "i", data: json(2) });
    await eventually(() => expect(calls).toHaveLength(2));
  });

  it("registers the functions and triggers declared in the configuration once, however often it starts", async () => {
    const calls: JsonValue[] = [];
    const { connect } = await functionServers((_id, payload) => {
      calls.push(payload);
      return null;
    });
    const store = new MemoryRegistrationStore();
    const declared = {
      remote: [{ functionId: "declared::fn", url: connect.url }],
      triggers: [{ type: "stream", functionId: "declared::fn", config: { streamName: "cfg" } }],
    };
    const first = await server({ backend: sharing(store), functions: declared });
    await first.stop();
    const second = await server({ backend: sharing(store), functions: declared });
    const triggers = (await triggerClient(second).listTriggers({})).triggers;
    expect(triggers).toHaveLength(1);
    expect(triggers[0].triggerId).toMatch(/^config-/);
    await second.client().set({ streamName: "cfg", groupId: "g", itemId: "i", data: json(true) });
    await eventually(() => expect(calls).toHaveLength(1));
  });

  it("stops without waiting for handlers beyond the grace period, and starts no queued call afterwards", async () => {
    const started = deferred();
    let reason: unknown;
    let calls = 0;
    const running = await startServer({
      shutdownGraceMs: 200,
      log: silentLog,
      functions: {
        handlers: {
          hang: (_payload, signal) => {
            calls++;
            started.resolve();
            signal.addEventListener("abort", () => (reason = signal.reason));
            return new Promise(() => undefined);
          },
        },
        triggers: [{ type: "stream", functionId: "hang", config: { streamName: "stop" } }],
      },
    });
    const client = running.client();
    // Two writes of one item: the second call waits behind the first, which never ends.
    await client.set({ streamName: "stop", groupId: "g", itemId: "i", data: json(1) });
    await client.set({ streamName: "stop", groupId: "g", itemId: "i", data: json(2) });
    await started.promise;
    await running.stop();
    expect(reason).toMatchObject({ code: ErrorCode.Unavailable });
    expect(calls).toBe(1);
    await eventually(() => {
      const [trigger] = running.server.functions.listTriggers();
      expect(trigger.stats).toMatchObject({ calls: 1, failures: 1, dropped: 1 });
    });
  });
});
