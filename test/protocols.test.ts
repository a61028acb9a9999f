import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { ChangeType } from "../gen/iii/stream/v1/stream_pb.js";
import { expectConnectError } from "./conformance/expect-error.js";
import { json, op, value } from "./conformance/proto-values.js";
import { SubscriptionReader } from "./conformance/subscription-reader.js";
import { uniqueNames } from "./conformance/unique-names.js";
import { ALL_TRANSPORTS, startServer, type RunningServer } from "./support/server.js";

let running: RunningServer;
const streamName = uniqueNames("proto");

beforeAll(async () => {
  running = await startServer();
});

afterAll(async () => {
  await running?.stop();
});

describe.each(ALL_TRANSPORTS)("over %s", (kind) => {
  const client = () => running.client(kind);

  it("Set, Get, Update, List, ListGroups and ListAll", async () => {
    const c = client();
    const s = streamName(kind);
    const created = await c.set({ streamName: s, groupId: "g", itemId: "i", data: value({ n: 1, list: [], obj: {} }) });
    expect([created.oldValue, json(created.newValue), created.revision, created.offset]).toEqual([
      undefined,
      { n: 1, list: [], obj: {} },
      1n,
      1n,
    ]);
    // A stored null comes back as a present null, not as an absent field.
    await c.set({ streamName: s, groupId: "g", itemId: "null", data: value(null) });
    const overwritten = await c.set({ streamName: s, groupId: "g", itemId: "null", data: value(1) });
    expect(overwritten.oldValue).toBeDefined();
    expect(json(overwritten.oldValue)).toBeNull();

    const { item } = await c.get({ streamName: s, groupId: "g", itemId: "i" });
    expect([item?.itemId, json(item?.data), item?.revision]).toEqual(["i", { n: 1, list: [], obj: {} }, 1n]);
    expect(Number(item?.updatedAtMs)).toBeGreaterThan(0);
    expect((await c.get({ streamName: s, groupId: "g", itemId: "missing" })).item).toBeUndefined();

    const updated = await c.update({
      streamName: s,
      groupId: "g",
      itemId: "i",
      ops: [op.increment(["n"], 2), op.append(["list"], "x"), op.increment(["list"], 1), op.merge(["obj"], { k: null })],
    });
    expect(json(updated.newValue)).toStrictEqual({ n: 3, list: ["x"], obj: { k: null } });
    expect(updated.errors.map((e) => [e.opIndex, e.code])).toEqual([[2, "increment.not_number"]]);
    expect([updated.revision, updated.offset]).toEqual([2n, 4n]);

    await c.set({ streamName: s, groupId: "h", itemId: "i", data: value("h") });
    const { items } = await c.list({ streamName: s, groupId: "g" });
    expect(items.map((x) => [x.itemId, x.revision])).toEqual([
      ["i", 2n],
      ["null", 2n],
    ]);
    expect((await c.listGroups({ streamName: s })).groups).toEqual(["g", "h"]);
    const all = await c.listAll({});
    expect(all.count).toBe(all.streams.length);
    expect(all.streams.find((stream) => stream.streamName === s)?.groups).toEqual(["g", "h"]);

    const deleted = await c.delete({ streamName: s, groupId: "h", itemId: "i" });
    expect([json(deleted.oldValue), deleted.offset]).toEqual(["h", 2n]);
  });

  it("Subscribe delivers the snapshot, a live change and a Send event", async () => {
    const c = client();
    const s = streamName(kind);
    await c.set({ streamName: s, groupId: "g", itemId: "a", data: value([1]) });
    const reader = new SubscriptionReader(c, { streamName: s, groupId: "g" });
    try {
      const snapshot = await reader.expectNext("snapshot");
      expect([snapshot.offset, snapshot.items.map((x) => [x.itemId, json(x.data)])]).toEqual([1n, [["a", [1]]]]);

      await c.set({ streamName: s, groupId: "g", itemId: "b", data: value({ b: true }) });
      const change = await reader.expectNext("change");
      expect([change.type, change.itemId, json(change.data), change.revision, change.offset]).toEqual([
        ChangeType.CREATE,
        "b",
        { b: true },
        1n,
        2n,
      ]);

      await c.send({ streamName: s, groupId: "g", type: "ping", itemId: "b", data: value("hello") });
      const event = await reader.expectNext("event");
      expect([event.type, event.itemId, json(event.data), event.offset]).toEqual(["ping", "b", "hello", 2n]);
    } finally {
      reader.close();
    }
  });

  it("keeps the error code and message", async () => {
    const c = client();
    const s = streamName(kind);
    await expectConnectError(
      c.set({ streamName: "", groupId: "g", itemId: "i", data: value(1) }),
      Code.InvalidArgument,
      /^stream_name must not be empty$/,
    );
    await expectConnectError(c.set({ streamName: s, groupId: "g", itemId: "i" }), Code.InvalidArgument, /data is required/);
    await expectConnectError(
      c.update({ streamName: s, groupId: "g", itemId: "i", ops: [op.none()] }),
      Code.InvalidArgument,
      /ops\[0\] names no operation/,
    );
    await expectConnectError(
      c.set({ streamName: s, groupId: "g", itemId: "i", data: value(1), ifRevision: 3n }),
      Code.FailedPrecondition,
      /revision/,
    );
    const subscription = new SubscriptionReader(c, { streamName: s, groupId: "" });
    try {
      await expectConnectError(subscription.next(), Code.InvalidArgument, /^group_id must not be empty$/);
    } finally {
      subscription.close();
    }
    expect((await c.listGroups({ streamName: s })).groups).toEqual([]);
  });
});

describe("plain HTTP clients", () => {
  async function postJson(path: string, body: unknown) {
    const response = await fetch(`${running.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it("a JSON POST with snake_case or camelCase field names works like any client", async () => {
    const s = streamName("fetch");
    const snake = await postJson("/iii.stream.v1.StreamService/Set", {
      stream_name: s,
      group_id: "g",
      item_id: "i",
      data: { a: [1, "b", null], e: {} },
      if_revision: 0,
    });
    expect(snake).toEqual({ status: 200, body: { newValue: { a: [1, "b", null], e: {} }, revision: "1", offset: "1" } });

    const camel = await postJson("/iii.stream.v1.StreamService/Set", {
      streamName: s,
      groupId: "g",
      itemId: "i",
      data: "second",
      ifRevision: "1",
    });
    expect(camel).toEqual({
      status: 200,
      body: { oldValue: { a: [1, "b", null], e: {} }, newValue: "second", revision: "2", offset: "2" },
    });

    const update = await postJson("/iii.stream.v1.StreamService/Update", {
      stream_name: s,
      group_id: "g",
      item_id: "n",
      ops: [{ increment: { path: ["count"], by: 5 } }, { set: { path: ["when"], value: "now" } }, { append: { path: ["count"], value: 1 } }],
    });
    expect(update.status).toBe(200);
    expect(update.body).toMatchObject({
      newValue: { count: 5, when: "now" },
      errors: [{ opIndex: 2, code: "append.type_mismatch" }],
      revision: "1",
      offset: "3",
    });

    const got = await postJson("/iii.stream.v1.StreamService/Get", { stream_name: s, group_id: "g", item_id: "i" });
    expect(got.status).toBe(200);
    expect(got.body.item).toMatchObject({ itemId: "i", data: "second", revision: "2" });

    const error = await postJson("/iii.stream.v1.StreamService/Get", { stream_name: s, group_id: "g" });
    expect(error).toEqual({ status: 400, body: { code: "invalid_argument", message: "item_id must not be empty" } });
  });

  it("GET /healthz answers 200 with JSON", async () => {
    const response = await fetch(`${running.url}/healthz`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await response.json()).toEqual({ status: "ok", adapter: "memory" });
  });

  it("an unknown path or method answers 404", async () => {
    expect((await fetch(`${running.url}/nope`)).status).toBe(404);
    const unknownMethod = await fetch(`${running.url}/iii.stream.v1.StreamService/Frobnicate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(unknownMethod.status).toBe(404);
    await unknownMethod.body?.cancel();
  });
});

describe("grpc.health.v1.Health over gRPC", () => {
  it("reports SERVING for the server and the stream service, NOT_FOUND for an unknown service", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: running.url }));
    expect((await health.check({ service: "" })).status).toBe(ServingStatus.SERVING);
    expect((await health.check({ service: "iii.stream.v1.StreamService" })).status).toBe(ServingStatus.SERVING);
    await expectConnectError(health.check({ service: "no.such.Service" }), Code.NotFound, /no\.such\.Service/);
  });
});
