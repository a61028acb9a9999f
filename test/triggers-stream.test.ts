import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JsonObject, JsonValue } from "../src/index.js";
import { TriggerService } from "../gen/iii/stream/v1/triggers_pb.js";
import { deferred, eventually, startPlainFunctionServer, type FunctionServer } from "./support/function-server.js";
import { startServer, transportFor, type RunningServer } from "./support/server.js";
import { json } from "./support/subscribe-view.js";
import { RecordingLog } from "../src/index.js";

/** Everything a test's in-process functions received, by function id. */
const received = new Map<string, JsonObject[]>();
function calls(functionId: string): JsonObject[] {
  let list = received.get(functionId);
  if (!list) received.set(functionId, (list = []));
  return list;
}
function recorder(functionId: string, result?: JsonValue) {
  return (payload: JsonValue) => {
    calls(functionId).push(payload as JsonObject);
    return result;
  };
}

const log = new RecordingLog("warn");
let running: RunningServer;
let remote: FunctionServer;
const releaseSlow = deferred();
let triggers: ReturnType<typeof createClient<typeof TriggerService>>;

beforeAll(async () => {
  remote = await startPlainFunctionServer(() => null);
  running = await startServer({
    log,
    functions: {
      functionTimeoutMs: 300,
      handlers: {
        record: recorder("record"),
        "cond::throws": () => {
          throw new Error("condition broke");
        },
      },
    },
  });
  triggers = createClient(TriggerService, transportFor(running.url, "connect-json-h1"));
  await triggers.registerFunction({ functionId: "remote::record", url: remote.url });
});
afterAll(async () => {
  releaseSlow.resolve();
  await running.stop();
  await remote.close();
});

async function trigger(functionId: string, config: Record<string, string>, triggerId?: string): Promise<string> {
  return (await triggers.registerTrigger({ triggerId, type: "stream", functionId, config })).triggerId;
}

function withoutTimestamp(payload: JsonObject): JsonObject {
  expect(typeof payload.timestamp).toBe("number");
  const { timestamp: _, ...rest } = payload;
  return rest;
}

describe("stream triggers", () => {
  it("hands the reference's wrapper, plus offset and revision, for create, update, delete and send", async () => {
    await trigger("record", { streamName: "shapes" });
    await trigger("remote::record", { streamName: "shapes" });
    const client = running.client();
    const key = { streamName: "shapes", groupId: "g", itemId: "i" };
    await client.set({ ...key, data: json({ n: 1 }) });
    await client.update({ ...key, ops: [{ op: { case: "increment", value: { path: ["n"], by: 2n } } }] });
    // Reads, a no-op update and a delete of a missing item fire nothing.
    await client.get(key);
    await client.list(key);
    const noop = await client.update({ ...key, ops: [{ op: { case: "append", value: { path: ["n"], value: json(1) } } }] });
    expect(noop.errors).toHaveLength(1);
    await client.delete(key);
    await client.delete(key);
    await client.send({ streamName: "shapes", groupId: "g", type: "typing", data: json({ who: "ann" }) });
    await client.send({ streamName: "shapes", groupId: "g", type: "poke", data: json(null), itemId: "i" });

    const base = { type: "stream", streamName: "shapes", groupId: "g" };
    const expected = [
      { ...base, id: "i", event: { type: "create", data: { n: 1 } }, offset: 1, revision: 1 },
      { ...base, id: "i", event: { type: "update", data: { n: 3 } }, offset: 2, revision: 2 },
      { ...base, id: "i", event: { type: "delete", data: { n: 3 } }, offset: 3, revision: 2 },
      { ...base, id: null, event: { type: "event", event: { type: "typing", data: { who: "ann" } } }, offset: 3, revision: null },
      { ...base, id: "i", event: { type: "event", event: { type: "poke", data: null } }, offset: 3, revision: null },
    ];
    // Every call also carries its delivery id (the trigger, stream, group and offset; an
    // event, which has no offset of its own, a random suffix) and its attempt.
    const withoutDelivery = (payload: JsonObject) => {
      const { delivery_id: deliveryId, attempt, ...rest } = withoutTimestamp(payload);
      const change = (rest.event as JsonObject).type !== "event";
      expect(deliveryId).toMatch(change ? new RegExp(`/shapes/g/${String(rest.offset)}$`) : /\/shapes\/g\/3\/e[0-9a-f]{8}$/);
      expect(attempt).toBe(1);
      return rest;
    };
    await eventually(() => expect(calls("record").map(withoutDelivery)).toEqual(expected));
    // The same payload reaches a remote function as plain JSON.
    await eventually(() => expect(remote.calls.map((c) => withoutDelivery(c.payload as JsonObject))).toEqual(expected));
  });

  it("matches stream, group and item filters; an event without an item never matches an item filter", async () => {
    await trigger("filter::group", { streamName: "filters", groupId: "g1" });
    await trigger("filter::item", { streamName: "filters", itemId: "x" });
    await trigger("filter::both", { streamName: "filters", groupId: "g2", itemId: "x" });
    for (const id of ["filter::group", "filter::item", "filter::both"]) running.server.registerFunction(id, recorder(id));
    const client = running.client();
    for (const [groupId, itemId] of [["g1", "x"], ["g1", "y"], ["g2", "x"], ["g2", "y"]]) {
      await client.set({ streamName: "filters", groupId, itemId, data: json(`${groupId}/${itemId}`) });
    }
    await client.set({ streamName: "other", groupId: "g1", itemId: "x", data: json(0) });
    await client.send({ streamName: "filters", groupId: "g2", type: "no-item", data: json(0) });
    await client.send({ streamName: "filters", groupId: "g2", type: "item", data: json(0), itemId: "x" });

    const seen = (id: string) => calls(id).map((p) => (p.event as JsonObject).type === "event" ? `event:${p.groupId}/${p.id}` : (p.event as JsonObject).data);
    await eventually(() => {
      expect(seen("filter::group")).toEqual(["g1/x", "g1/y"]);
      expect(seen("filter::item")).toEqual(["g1/x", "g2/x", "event:g2/x"]);
      expect(seen("filter::both")).toEqual(["g2/x", "event:g2/x"]);
    });
  });

  it("skips the handler only when the condition returns false, or fails", async () => {
    const outcomes: Record<string, JsonValue | undefined> = {
      false: false,
      true: true,
      null: null,
      zero: 0,
      empty: "",
      object: {},
      nothing: undefined,
    };
    for (const [name, result] of Object.entries(outcomes)) {
      running.server.registerFunction(`cond::${name}`, () => result);
      running.server.registerFunction(`handler::${name}`, recorder(`handler::${name}`));
      await triggers.registerTrigger({
        triggerId: `cond-${name}`,
        type: "stream",
        functionId: `handler::${name}`,
        config: { streamName: "conditions", conditionFunctionId: `cond::${name}` },
      });
    }
    running.server.registerFunction("handler::throws", recorder("handler::throws"));
    await triggers.registerTrigger({
      triggerId: "cond-throws",
      type: "stream",
      functionId: "handler::throws",
      config: { streamName: "conditions", conditionFunctionId: "cond::throws" },
    });
    await running.client().set({ streamName: "conditions", groupId: "g", itemId: "i", data: json(1) });

    await eventually(() => {
      for (const name of ["true", "null", "zero", "empty", "object", "nothing"]) expect(calls(`handler::${name}`)).toHaveLength(1);
    });
    expect(calls("handler::false")).toHaveLength(0);
    expect(calls("handler::throws")).toHaveLength(0);
    const stats = Object.fromEntries((await triggers.listTriggers({})).triggers.map((t) => [t.triggerId, t.stats!]));
    expect(stats["cond-false"]).toMatchObject({ calls: 0n, skipped: 1n, failures: 0n });
    expect(stats["cond-throws"]).toMatchObject({ calls: 0n, skipped: 0n, failures: 1n });
    expect(stats["cond-true"]).toMatchObject({ calls: 1n, skipped: 0n, failures: 0n });
  });

  it("refuses a stream trigger without stream_name, and an unknown type, with INVALID_ARGUMENT", async () => {
    for (const request of [
      { type: "stream", functionId: "record", config: {} },
      { type: "stream", functionId: "record" },
      { type: "stream:change", functionId: "record", config: { streamName: "s" } },
      { type: "stream", functionId: "", config: { streamName: "s" } },
      { triggerId: "", type: "stream", functionId: "record", config: { streamName: "s" } },
    ]) {
      const error = await triggers.registerTrigger(request).catch((e: unknown) => ConnectError.from(e));
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    }
    // The server is still fine.
    expect((await triggers.listTriggers({})).triggers.length).toBeGreaterThan(0);
  });

  it("replaces a trigger registered again under its id, and stops firing an unregistered one", async () => {
    running.server.registerFunction("replace::a", recorder("replace::a"));
    running.server.registerFunction("replace::b", recorder("replace::b"));
    await trigger("replace::a", { streamName: "replace-old" }, "replace-me");
    await trigger("replace::a", { streamName: "replace-new" }, "replace-me");
    const client = running.client();
    await client.set({ streamName: "replace-old", groupId: "g", itemId: "i", data: json(1) });
    await client.set({ streamName: "replace-new", groupId: "g", itemId: "i", data: json(2) });
    await trigger("replace::b", { streamName: "replace-new" }, "replace-me");
    await client.set({ streamName: "replace-new", groupId: "g", itemId: "i", data: json(3) });
    expect((await triggers.unregisterTrigger({ triggerId: "replace-me" })).found).toBe(true);
    expect((await triggers.unregisterTrigger({ triggerId: "replace-me" })).found).toBe(false);
    await client.set({ streamName: "replace-new", groupId: "g", itemId: "i", data: json(4) });
    // A later trigger on the same item proves that earlier calls had their chance to run.
    running.server.registerFunction("replace::probe", recorder("replace::probe"));
    await trigger("replace::probe", { streamName: "replace-new" });
    await client.set({ streamName: "replace-new", groupId: "g", itemId: "i", data: json(5) });
    await eventually(() => expect(calls("replace::probe")).toHaveLength(1));
    expect(calls("replace::a").map((p) => (p.event as JsonObject).data)).toEqual([2]);
    expect(calls("replace::b").map((p) => (p.event as JsonObject).data)).toEqual([3]);
  });

  it("isolates a failing and a hanging handler from the write and from other handlers, logging and counting them", async () => {
    running.server.registerFunction("iso::fails", () => {
      throw new Error("handler broke");
    });
    running.server.registerFunction("iso::hangs", () => new Promise(() => undefined));
    running.server.registerFunction("iso::ok", recorder("iso::ok"));
    await trigger("iso::fails", { streamName: "isolation" }, "iso-fails");
    await trigger("iso::hangs", { streamName: "isolation" }, "iso-hangs");
    await trigger("iso::ok", { streamName: "isolation" }, "iso-ok");
    await trigger("iso::not-registered", { streamName: "isolation" }, "iso-missing");
    const client = running.client();
    for (let i = 1; i <= 3; i++) {
      const result = await client.set({ streamName: "isolation", groupId: "g", itemId: `i${i}`, data: json(i) });
      expect(result.revision).toBe(1n);
    }
    await eventually(() => expect(calls("iso::ok")).toHaveLength(3));
    // The hanging calls time out after function_timeout_ms (300 ms here).
    await eventually(async () => {
      const stats = Object.fromEntries((await triggers.listTriggers({})).triggers.map((t) => [t.triggerId, t.stats!]));
      expect(stats["iso-fails"]).toMatchObject({ calls: 3n, failures: 3n, timeouts: 0n });
      expect(stats["iso-hangs"]).toMatchObject({ calls: 3n, failures: 3n, timeouts: 3n });
      expect(stats["iso-missing"]).toMatchObject({ calls: 3n, failures: 3n });
      expect(stats["iso-ok"]).toMatchObject({ calls: 3n, failures: 0n });
    });
    // Each failure is an error record naming the trigger, its function and its stream.
    const failure = (triggerId: string, functionId: string, error: RegExp) =>
      expect.objectContaining({
        level: "error",
        message: "trigger call failed",
        fields: expect.objectContaining({ trigger_id: triggerId, trigger_type: "stream", function_id: functionId, stream: "isolation", error: expect.stringMatching(error) }),
      });
    expect(log.records).toContainEqual(failure("iso-fails", "iso::fails", /handler broke/));
    expect(log.records).toContainEqual(failure("iso-hangs", "iso::hangs", /300 ms/));
    expect(log.records).toContainEqual(failure("iso-missing", "iso::not-registered", /not registered/));
  });

  it("returns from the write without waiting for handlers", async () => {
    const started = deferred();
    let finished = false;
    running.server.registerFunction("slow::handler", async () => {
      started.resolve();
      await releaseSlow.promise;
      finished = true;
    });
    await trigger("slow::handler", { streamName: "fire-and-forget" });
    const result = await running.client().set({ streamName: "fire-and-forget", groupId: "g", itemId: "i", data: json(1) });
    expect(result.offset).toBe(1n);
    await started.promise;
    expect(finished).toBe(false);
    releaseSlow.resolve();
    await eventually(() => expect(finished).toBe(true));
  });

  it("shows one trigger the changes of one item in offset order under concurrent writers", async () => {
    const seen = new Map<string, number[]>();
    running.server.registerFunction("order::handler", async (payload) => {
      const p = payload as JsonObject;
      // Handlers of different items overlap and take different times.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
      const key = String(p.id);
      seen.set(key, [...(seen.get(key) ?? []), p.offset as number]);
    });
    await trigger("order::handler", { streamName: "ordering" });
    const clients = [running.client("connect-binary-h2"), running.client("grpc"), running.client("connect-json-h1")];
    const items = ["a", "b", "c", "d"];
    const writesPerItem = 30;
    await Promise.all(
      Array.from({ length: writesPerItem * items.length }, (_, n) =>
        clients[n % clients.length].update({
          streamName: "ordering",
          groupId: "g",
          itemId: items[n % items.length],
          ops: [{ op: { case: "increment", value: { path: ["n"], by: 1n } } }],
        }),
      ),
    );
    await eventually(() => expect([...seen.values()].flat()).toHaveLength(writesPerItem * items.length));
    for (const item of items) {
      const offsets = seen.get(item)!;
      expect(offsets).toHaveLength(writesPerItem);
      expect(offsets).toEqual([...offsets].sort((x, y) => x - y));
    }
  });
});
