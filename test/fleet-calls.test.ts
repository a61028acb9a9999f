/*
 * The call/cancel/reply protocol between instances (functions/fleet-calls.ts) over the
 * in-memory fleet bus: what every bus (Redis included) carries, without a broker.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode, type JsonValue, StreamError } from "../src/index.js";
import { MemoryFleetHub } from "../src/adapters/memory/memory-fleet-bus.js";
import { CallNotDelivered, FleetCalls } from "../src/functions/fleet-calls.js";
import type { FleetCallHandler } from "../src/functions/types.js";
import { deferred, eventually } from "./support/function-server.js";

const open: FleetCalls[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((calls) => calls.close()));
});

/** An instance on the hub serving calls with `handler`. */
async function instance(hub: MemoryFleetHub, handler: FleetCallHandler = async () => null): Promise<FleetCalls> {
  const calls = new FleetCalls(hub.bus());
  await calls.start(handler);
  open.push(calls);
  return calls;
}

function never(): AbortSignal {
  return new AbortController().signal;
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("the call did not fail");
}

describe("fleet calls over an in-memory bus", () => {
  it("a call runs on the host with its function id and payload, and its result comes back", async () => {
    const hub = new MemoryFleetHub();
    const seen: Array<[string, JsonValue]> = [];
    const host = await instance(hub, async (functionId, payload) => {
      seen.push([functionId, payload]);
      return { doubled: (payload as { n: number }).n * 2 };
    });
    const caller = await instance(hub);
    expect(await caller.call(host.instanceId, "math::double", { n: 21 }, never())).toStrictEqual({ doubled: 42 });
    expect(seen).toStrictEqual([["math::double", { n: 21 }]]);
    // No result is no result, not null.
    const quiet = await instance(hub, async () => undefined);
    expect(await caller.call(quiet.instanceId, "f", null, never())).toBeUndefined();
  });

  it("the host's error code and message travel back; anything that is not a StreamError arrives as INTERNAL", async () => {
    const hub = new MemoryFleetHub();
    const host = await instance(hub, async (functionId) => {
      if (functionId === "missing") throw new StreamError(ErrorCode.NotFound, 'function "missing" is not registered');
      throw new TypeError("boom");
    });
    const caller = await instance(hub);
    const notFound = await failure(caller.call(host.instanceId, "missing", 1, never()));
    expect(notFound).toBeInstanceOf(StreamError);
    expect(notFound).toMatchObject({ code: ErrorCode.NotFound, message: 'function "missing" is not registered' });
    const internal = await failure(caller.call(host.instanceId, "broken", 1, never()));
    expect(internal).toMatchObject({ code: ErrorCode.Internal, message: "boom" });
  });

  it("a caller that gives up cancels the call: the handler on the host is aborted as ABORTED", async () => {
    const hub = new MemoryFleetHub();
    const started = deferred();
    let hostSignal: AbortSignal | undefined;
    const host = await instance(hub, (_functionId, _payload, signal) => {
      hostSignal = signal;
      started.resolve();
      return new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }));
    });
    const caller = await instance(hub);
    const controller = new AbortController();
    const call = caller.call(host.instanceId, "slow", null, controller.signal);
    await started.promise;
    expect(hostSignal?.aborted).toBe(false);
    const reason = new StreamError(ErrorCode.DeadlineExceeded, "the caller's timeout");
    controller.abort(reason);
    expect(await failure(call)).toBe(reason);
    await eventually(() => expect(hostSignal?.aborted).toBe(true));
    expect(hostSignal?.reason).toMatchObject({ code: ErrorCode.Aborted, message: "the caller gave up" });
  });

  it("a call to an instance that is gone fails at once as not delivered, and another host is tried", async () => {
    const hub = new MemoryFleetHub();
    const gone = await instance(hub);
    const goneId = gone.instanceId;
    await gone.close();
    let served = 0;
    const host = await instance(hub, async () => ++served);
    const caller = await instance(hub);

    const undelivered = await failure(caller.call(goneId, "f", null, never()));
    expect(undelivered).toBeInstanceOf(CallNotDelivered);
    expect(undelivered).toMatchObject({ code: ErrorCode.Unavailable });
    expect((undelivered as Error).message).toContain(`instance ${goneId}, whose worker offers function "f", is not reachable`);

    // Whichever host it starts with (at random), every call ends on the live one.
    for (let i = 0; i < 20; i++) await caller.callAnyHost([goneId, host.instanceId], "f", null, never());
    expect(served).toBe(20);
    expect(await failure(caller.callAnyHost([goneId, "never-there"], "f", null, never()))).toBeInstanceOf(CallNotDelivered);
  });

  it("a delivered call that fails is not tried on another host", async () => {
    const hub = new MemoryFleetHub();
    let calls = 0;
    const failing = async () => {
      calls++;
      throw new StreamError(ErrorCode.FailedPrecondition, "no");
    };
    const [a, b] = [await instance(hub, failing), await instance(hub, failing)];
    const caller = await instance(hub);
    expect(await failure(caller.callAnyHost([a.instanceId, b.instanceId], "f", null, never()))).toMatchObject({
      code: ErrorCode.FailedPrecondition,
    });
    expect(calls).toBe(1);
  });

  it("closing fails the instance's pending calls with UNAVAILABLE, and answers the calls it serves", async () => {
    const hub = new MemoryFleetHub();
    const started = deferred();
    const host = await instance(hub, (_functionId, _payload, signal) => {
      started.resolve();
      // Never answers on its own (but ends when the host closes, as the registry's calls do).
      return new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }));
    });
    const caller = await instance(hub);
    const pending = caller.call(host.instanceId, "hang", null, never());
    await started.promise;
    await caller.close();
    expect(await failure(pending)).toMatchObject({ code: ErrorCode.Unavailable, message: "the server is shutting down" });
    await expect(caller.call(host.instanceId, "hang", null, never())).rejects.toMatchObject({ code: ErrorCode.Unavailable });

    const serving = deferred();
    const stopping = await instance(hub, (_functionId, _payload, signal) => {
      serving.resolve();
      return new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }));
    });
    const other = await instance(hub);
    const served = other.call(stopping.instanceId, "slow", null, never());
    await serving.promise;
    await stopping.close();
    expect(await failure(served)).toMatchObject({
      code: ErrorCode.Unavailable,
      message: "the instance hosting the function is shutting down",
    });
  });

  it("the texts on the bus are the JSON call, cancel and reply messages of the wire format", async () => {
    const hub = new MemoryFleetHub();
    const raw = hub.bus();
    const texts: string[] = [];
    await raw.open((text) => texts.push(text));
    const caller = await instance(hub);
    const controller = new AbortController();
    const answered = caller.call(raw.instanceId, "f", { a: [1] }, never());
    await eventually(() => expect(texts).toHaveLength(1));
    const call = JSON.parse(texts[0]) as Record<string, unknown>;
    expect(Object.keys(call)).toStrictEqual(["kind", "callId", "functionId", "payload", "replyTo"]);
    expect(call).toMatchObject({ kind: "call", functionId: "f", payload: { a: [1] }, replyTo: caller.instanceId });
    await raw.send(caller.instanceId, JSON.stringify({ kind: "reply", callId: call.callId, result: 7 }));
    expect(await answered).toBe(7);

    const cancelled = caller.call(raw.instanceId, "g", null, controller.signal);
    await eventually(() => expect(texts).toHaveLength(2));
    controller.abort(new Error("gave up"));
    await expect(cancelled).rejects.toThrow("gave up");
    await eventually(() => expect(texts).toHaveLength(3));
    expect(texts[2]).toBe(JSON.stringify({ kind: "cancel", callId: (JSON.parse(texts[1]) as { callId: string }).callId }));
    await raw.close();
  });
});
