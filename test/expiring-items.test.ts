import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type Client } from "@connectrpc/connect";
import { registerWorker, type IIIClient } from "iii-sdk";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError } from "../src/cli/config.js";
import { configToOptions } from "../src/cli/config-to-options.js";
import { createStreamClient, type StreamClient, type ViewUpdate } from "../src/client/node.js";
import { createStreamServer, FileStore, RedisItemStore, type JsonObject, type JsonValue } from "../src/index.js";
import { ChangeType } from "../gen/iii/stream/v1/stream_pb.js";
import { TriggerService } from "../gen/iii/stream/v1/triggers_pb.js";
import { json, value } from "./conformance/proto-values.js";
import { SubscriptionReader } from "./conformance/subscription-reader.js";
import { uniqueNames } from "./conformance/unique-names.js";
import { eventually } from "./support/function-server.js";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./support/redis.js";
import { startServer, transportFor, type RunningServer } from "./support/server.js";
import { wsUrl } from "./support/ws-client.js";

/*
 * Expiry beyond what the conformance suite checks through one server: removal after a
 * restart, exactly one removal on a fleet, stream triggers, the worker protocol, and
 * reads of expired items that no sweep has removed.
 */

const streamName = uniqueNames("expiry");
const keyPrefix = uniquePrefix("expiring-items");
const dataDir = mkdtempSync(join(tmpdir(), "iii-stream-expiry-"));
const servers: RunningServer[] = [];
const workers: IIIClient[] = [];
const clients: StreamClient[] = [];

async function server(options: Parameters<typeof startServer>[0]): Promise<RunningServer> {
  const running = await startServer(options);
  servers.push(running);
  return running;
}

async function stop(running: RunningServer): Promise<void> {
  servers.splice(servers.indexOf(running), 1);
  await running.stop();
}

afterAll(async () => {
  for (const client of clients) client.close();
  await Promise.all(workers.map((w) => w.shutdown()));
  await Promise.all(servers.map((s) => s.stop()));
  await deleteKeys(keyPrefix);
  rmSync(dataDir, { recursive: true, force: true });
});

/** A handler that records the payloads of the stream triggers it is registered for. */
function recorder(): { calls: JsonObject[]; handler: (payload: JsonValue) => null } {
  const calls: JsonObject[] = [];
  return { calls, handler: (payload) => (calls.push(payload as JsonObject), null) };
}

function triggerClient(running: RunningServer): Client<typeof TriggerService> {
  return createClient(TriggerService, transportFor(running.url, "connect-json-h1"));
}

async function nextChanges(reader: SubscriptionReader, count: number) {
  const changes = [];
  for (let i = 0; i < count; i++) changes.push(await reader.expectNext("change"));
  return changes;
}

describe("expiring items", () => {
  it("hides an expired item that nobody removed (sweeping off); a write removes it first, with its own DELETE", async () => {
    const running = await server({ expirySweepMs: 0 });
    const client = running.client();
    const s = streamName("unswept");
    const reader = new SubscriptionReader(client, { streamName: s, groupId: "g" });
    try {
      await reader.expectNext("snapshot");
      await client.set({ streamName: s, groupId: "g", itemId: "a", data: value(1), ttlMs: 1n });
      await client.set({ streamName: s, groupId: "g", itemId: "b", data: value(2) });
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect((await client.get({ streamName: s, groupId: "g", itemId: "a" })).item).toBeUndefined();
      expect((await client.list({ streamName: s, groupId: "g" })).items.map((i) => i.itemId)).toEqual(["b"]);
      // Still stored: nothing has been removed, so no change beyond the two creates.
      expect((await nextChanges(reader, 2)).map((c) => c.itemId)).toEqual(["a", "b"]);
      await client.update({ streamName: s, groupId: "g", itemId: "a", ops: [{ op: { case: "increment", value: { path: ["n"], by: 1n } } }] });
      const [removed, created] = await nextChanges(reader, 2);
      expect([removed.type, removed.expired, removed.offset, json(removed.data)]).toEqual([ChangeType.DELETE, true, 3n, 1]);
      expect([created.type, created.expired, created.revision, json(created.data)]).toEqual([ChangeType.CREATE, false, 1n, { n: 1 }]);
    } finally {
      reader.close();
      await stop(running);
    }
  });

  it("keeps expiry across a restart of the file store, and removes what expired while it was down", async () => {
    const s = streamName("restart");
    const first = await server({ backend: { items: FileStore.open({ dataDir }) }, expirySweepMs: 0 });
    await first.client().set({ streamName: s, groupId: "g", itemId: "short", data: value("x"), ttlMs: 1n });
    await first.client().set({ streamName: s, groupId: "g", itemId: "long", data: value("y"), ttlMs: 3_600_000n });
    const long = (await first.client().get({ streamName: s, groupId: "g", itemId: "long" })).item!;
    await stop(first);

    const second = await server({ backend: { items: FileStore.open({ dataDir }) } });
    const client = second.client();
    const again = (await client.get({ streamName: s, groupId: "g", itemId: "long" })).item!;
    expect(again.expiresAtMs).toBe(long.expiresAtMs);
    expect((await client.get({ streamName: s, groupId: "g", itemId: "short" })).item).toBeUndefined();
    // From the offset of the two creates: the removal comes from history or live, once.
    const reader = new SubscriptionReader(client, { streamName: s, groupId: "g", fromOffset: 2n });
    try {
      const removed = await reader.expectNext("change");
      expect([removed.type, removed.itemId, removed.expired, removed.offset]).toEqual([ChangeType.DELETE, "short", true, 3n]);
    } finally {
      reader.close();
    }
    await stop(second);
  });

  it("on two instances sharing one Redis, exactly one removes each item and fires its triggers, with event.expired", async () => {
    const records = [recorder(), recorder()];
    const instances = [];
    for (const record of records) {
      const running = await server({
        backend: { items: await RedisItemStore.connect({ url: REDIS_URL, keyPrefix }) },
        functions: { handlers: { record: record.handler } },
      });
      await triggerClient(running).registerTrigger({ type: "stream", functionId: "record", config: { streamName: "fleet-expiry" } });
      instances.push(running);
    }
    const s = "fleet-expiry";
    const readers = instances.map((running) => new SubscriptionReader(running.client(), { streamName: s, groupId: "g" }));
    try {
      for (const reader of readers) await reader.expectNext("snapshot");
      const count = 20;
      for (let i = 0; i < count; i++) {
        await instances[i % 2].client().set({ streamName: s, groupId: "g", itemId: `p${i}`, data: value({ i }), ttlMs: BigInt(50 + i * 10) });
      }
      for (const reader of readers) {
        const changes = await nextChanges(reader, 2 * count);
        const removals = changes.filter((c) => c.type === ChangeType.DELETE);
        expect(removals).toHaveLength(count);
        expect(removals.every((c) => c.expired)).toBe(true);
        expect(new Set(removals.map((c) => c.itemId)).size).toBe(count);
      }
      // Several sweeps of both instances later, nothing more was removed: the next write
      // takes the next offset.
      await new Promise((resolve) => setTimeout(resolve, 800));
      const sentinel = await instances[0].client().set({ streamName: s, groupId: "g", itemId: "sentinel", data: value(0) });
      expect(sentinel.offset).toBe(BigInt(2 * count + 1));
      for (const reader of readers) expect((await reader.expectNext("change")).itemId).toBe("sentinel");

      // Each trigger fired for every change its own instance made, once, and the
      // removals carry event.expired.
      const expiredCalls = () => records.flatMap((r) => r.calls).filter((call) => (call.event as JsonObject).expired === true);
      await eventually(() => expect(expiredCalls()).toHaveLength(count));
      expect(new Set(expiredCalls().map((call) => call.id)).size).toBe(count);
      expect(expiredCalls()[0]).toMatchObject({ type: "stream", streamName: s, groupId: "g", event: { type: "delete", expired: true } });
      const others = records.flatMap((r) => r.calls).filter((call) => (call.event as JsonObject).expired !== true);
      expect(others.every((call) => !("expired" in (call.event as JsonObject)))).toBe(true);
    } finally {
      for (const reader of readers) reader.close();
    }
  });

  it("takes ttl_ms in the worker protocol's stream::set, with the same limits", async () => {
    const running = await server({});
    const worker = registerWorker(wsUrl(running.url, "/"), { workerName: "expiry-test", otel: { enabled: false } });
    workers.push(worker);
    const call = (function_id: string, payload: unknown) => worker.trigger({ function_id, payload });
    const s = streamName("worker");
    const key = { stream_name: s, group_id: "g" };
    expect(await call("stream::set", { ...key, item_id: "kept", data: 1, ttl_ms: 3_600_000 })).toEqual({ old_value: null, new_value: 1 });
    const kept = (await running.client().get({ streamName: s, groupId: "g", itemId: "kept" })).item!;
    expect(kept.expiresAtMs > BigInt(Date.now())).toBe(true);

    await call("stream::set", { ...key, item_id: "brief", data: 2, ttl_ms: 1 });
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await call("stream::get", { ...key, item_id: "brief" })).toBeUndefined();
    expect(await call("stream::list", key)).toEqual([1]);

    await expect(call("stream::set", { ...key, item_id: "kept", data: 3, ttl_ms: 10 * 365 * 24 * 3600 * 1000 + 1 })).rejects.toMatchObject({
      code: "invalid_argument",
      message: expect.stringContaining("more than 10 years"),
    });
    await expect(call("stream::set", { ...key, item_id: "kept", data: 3, ttl_ms: "soon" })).rejects.toMatchObject({ code: "deserialization_error" });
    expect(await call("stream::get", { ...key, item_id: "kept" })).toBe(1);
  });

  it("reads expiry_sweep_ms from the config file and refuses a negative interval", () => {
    const path = join(mkdtempSync(join(tmpdir(), "iii-stream-expiry-config-")), "config.yaml");
    writeFileSync(path, "expiry_sweep_ms: 100\n");
    expect(configToOptions({ config: path, adapter: "memory" }, {}).options).toMatchObject({ expirySweepMs: 100 });
    writeFileSync(path, "expiry_sweep_ms: -1\n");
    expect(() => configToOptions({ config: path, adapter: "memory" }, {})).toThrow(ConfigError);
    expect(() => createStreamServer({ port: 0, expirySweepMs: -1 })).toThrow(/expirySweepMs/);
  });

  it("the client library writes with ttlMs (set, update, batch), reads expiresAtMs and marks the removal in its view", async () => {
    const running = await server({});
    const client = createStreamClient({ baseUrl: running.url });
    clients.push(client);
    const s = streamName("client");
    const view = client.watchGroup(s, "g");
    const updates: ViewUpdate[] = [];
    const iterated = (async () => {
      for await (const update of view) updates.push(update);
    })();
    await view.ready();
    await client.set(s, "g", "long", { n: 1 }, { ttlMs: 3_600_000 });
    expect((await client.get(s, "g", "long"))!.expiresAtMs! > Date.now()).toBe(true);
    await client.update(s, "g", "long", [{ type: "increment", path: ["n"], by: 1 }]);
    expect((await client.get(s, "g", "long"))!.expiresAtMs).toBeUndefined();
    await client.batch(s, "g", [{ itemId: "brief", set: "b", ttlMs: 200 }, { itemId: "other", update: [{ type: "set", value: 1 }], ttlMs: 3_600_000 }]);
    await client.update(s, "g", "third", [{ type: "set", value: 3 }], { ttlMs: 1 });
    await expect(client.set(s, "g", "x", 1, { ttlMs: 1.5 })).rejects.toMatchObject({ code: "invalid_argument" });
    await expect(client.set(s, "g", "x", 1, { ttlMs: 10 * 365 * 24 * 3600 * 1000 + 1 })).rejects.toMatchObject({ code: "invalid_argument" });
    await eventually(() => expect(updates.filter((u) => u.kind === "change" && u.change.expired === true)).toHaveLength(2));
    const changes = updates.flatMap((u) => (u.kind === "change" ? [`${u.change.type} ${u.change.itemId}${u.change.expired ? " expired" : ""}`] : []));
    expect(changes.filter((c) => c.startsWith("delete")).sort()).toEqual(["delete brief expired", "delete third expired"]);
    expect("expired" in (updates.find((u) => u.kind === "change")! as { change: object }).change).toBe(false);
    expect([...view.items.keys()].sort()).toEqual(["long", "other"]);
    view.close();
    await iterated;
  });
});
