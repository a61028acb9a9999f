import http from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import type { JsonObject, JsonValue } from "../src/index.js";
import { memoryBackend } from "../src/adapters/memory/memory-backend.js";
import { openFileBackend } from "../src/adapters/file/file-backend.js";
import { connectRedisBackend } from "../src/adapters/redis/redis-backend.js";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./support/redis.js";
import { TriggerDelivery, TriggerService } from "../gen/iii/stream/v1/triggers_pb.js";
import { value, json } from "./conformance/proto-values.js";
import { eventually, startPlainFunctionServer, type FunctionServer } from "./support/function-server.js";
import { startServer, transportFor, type RunningServer } from "./support/server.js";
import { freePort } from "./support/shell.js";
import { scrape, valueOf } from "./support/prometheus-text.js";

const cleanup: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const close of cleanup.reverse()) await close();
});

type Payload = JsonObject & { delivery_id: string; attempt: number; offset: number; id: string; groupId: string };

async function server(options: Parameters<typeof startServer>[0] = {}): Promise<RunningServer> {
  const running = await startServer(options);
  cleanup.push(running.stop);
  return running;
}

async function functionServer(handle: (payload: Payload) => JsonValue | undefined | Promise<JsonValue | undefined>): Promise<FunctionServer> {
  const remote = await startPlainFunctionServer((_id, payload) => handle(payload as Payload));
  cleanup.push(remote.close);
  return remote;
}

function triggers(running: RunningServer) {
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

/** Registers `fn` at `url` and an at-least-once trigger on stream "s" calling it, with quick retries. */
async function durableTrigger(running: RunningServer, url: string, config: Partial<{ maxAttempts: number; itemId: string; groupId: string }> = {}) {
  const client = triggers(running);
  await client.registerFunction({ functionId: "fn", url });
  const { triggerId } = await client.registerTrigger({
    triggerId: "t",
    type: "stream",
    functionId: "fn",
    config: { streamName: "s", delivery: TriggerDelivery.AT_LEAST_ONCE, retryInitialMs: 20, retryMaxMs: 80, ...config },
  });
  return { client, triggerId };
}

const backends = {
  memory: () => memoryBackend(),
  redis: async () => {
    const keyPrefix = uniquePrefix("durable-triggers");
    cleanup.push(() => deleteKeys(keyPrefix));
    return connectRedisBackend({ url: REDIS_URL, keyPrefix, outboxLeaseMs: 1000 });
  },
  file: () => {
    const dir = mkdtempSync(join(tmpdir(), "iii-stream-durable-"));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    return openFileBackend({ dataDir: dir });
  },
};

describe.each(Object.keys(backends) as Array<keyof typeof backends>)("at-least-once stream triggers (%s)", (name) => {
  it("retries a failing call with backoff, holds back only its item, keeps offset order, then delivers", async () => {
    const running = await server({ backend: await backends[name]() });
    const failures = new Map<string, number>();
    const succeeded: Payload[] = [];
    const remote = await functionServer((payload) => {
      // The first call of item "slow" fails three times at least, and until every call
      // of "fast" is done: a failing item must not hold back the others.
      const fastDone = succeeded.filter((p) => p.id === "fast").length === 3;
      if (payload.delivery_id === "t/s/g/1" && ((failures.get(payload.delivery_id) ?? 0) < 3 || !fastDone)) {
        failures.set(payload.delivery_id, (failures.get(payload.delivery_id) ?? 0) + 1);
        throw new Error("not yet");
      }
      succeeded.push(payload);
      return null;
    });
    await durableTrigger(running, remote.url);
    const writer = running.client();
    for (let n = 0; n < 3; n++) await writer.set({ streamName: "s", groupId: "g", itemId: "slow", data: value({ n }) });
    for (let n = 0; n < 3; n++) await writer.set({ streamName: "s", groupId: "g", itemId: "fast", data: value({ n }) });

    await eventually(() => expect(succeeded).toHaveLength(6));
    const slow = succeeded.filter((p) => p.id === "slow");
    const fast = succeeded.filter((p) => p.id === "fast");
    expect(slow.map((p) => p.offset)).toEqual([1, 2, 3]);
    expect(fast.map((p) => p.offset)).toEqual([4, 5, 6]);
    // The failing item held back only itself: the other item was done first.
    expect(succeeded.indexOf(fast[2])).toBeLessThan(succeeded.indexOf(slow[0]));
    // The first call of "slow" was attempted at least four times under one delivery id,
    // numbered 1, 2, ...; the later calls of "slow" waited for it and then succeeded at once.
    const attempts = remote.calls.map((c) => c.payload as Payload).filter((p) => p.delivery_id === slow[0].delivery_id);
    expect(attempts.length).toBeGreaterThanOrEqual(4);
    expect(attempts.map((p) => p.attempt)).toEqual(attempts.map((_, index) => index + 1));
    expect(slow[0].delivery_id).toBe("t/s/g/1");
    expect(slow.map((p) => p.attempt)).toEqual([attempts.length, 1, 1]);
  });

  it("retries a call that timed out, and one to a function that is down for a while, in order", async () => {
    const running = await server({ backend: await backends[name](), functions: { functionTimeoutMs: 200 } });
    const hungOnce = new Set<string>();
    const port = await freePort();
    const { client } = await durableTrigger(running, `http://127.0.0.1:${port}`);
    const writer = running.client();
    for (let n = 0; n < 3; n++) await writer.set({ streamName: "s", groupId: "g", itemId: "d", data: value({ n }) });
    // Nothing listens yet: the first call fails to connect, and is retried.
    await eventually(async () => expect((await client.listTriggers({})).triggers[0].stats?.failures).toBeGreaterThan(1n));
    const calls: Payload[] = [];
    const remote = http.createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        const { payload } = JSON.parse(body) as { payload: Payload };
        calls.push(payload);
        // The first attempt at each call hangs past the function timeout.
        const hang = !hungOnce.has(payload.delivery_id);
        hungOnce.add(payload.delivery_id);
        setTimeout(() => res.writeHead(200, { "content-type": "application/json" }).end("{}"), hang ? 1000 : 0);
      });
    });
    await new Promise<void>((resolve) => remote.listen(port, "127.0.0.1", resolve));
    cleanup.push(() => new Promise<void>((resolve) => { remote.close(() => resolve()); remote.closeAllConnections(); }));
    await eventually(async () => expect((await client.listTriggers({})).triggers[0].lag).toBe(0n), 10_000);
    // Each call: one attempt that timed out, then one that succeeded, in offset order.
    const offsets = calls.map((p) => p.offset);
    expect(offsets).toEqual([1, 1, 2, 2, 3, 3]);
    expect((await client.listTriggers({})).triggers[0].stats?.timeouts).toBeGreaterThanOrEqual(3n);
  });

  it("makes a dead letter after max_attempts, lets the item go on, lists it and retries it on request", async () => {
    const running = await server({ backend: await backends[name]() });
    let broken = true;
    const succeeded: Payload[] = [];
    const remote = await functionServer((payload) => {
      if (broken && ((payload.event as JsonObject).data as JsonObject).poison === true) throw new Error("cannot digest");
      succeeded.push(payload);
      return null;
    });
    const { client } = await durableTrigger(running, remote.url, { maxAttempts: 3 });
    const writer = running.client();
    await writer.set({ streamName: "s", groupId: "g", itemId: "a", data: value({ poison: true }) });
    await writer.set({ streamName: "s", groupId: "g", itemId: "a", data: value({ poison: false }) });

    await eventually(() => expect(succeeded.map((p) => p.offset)).toEqual([2]));
    const poisonCalls = remote.calls.filter((c) => (c.payload as Payload).offset === 1);
    expect(poisonCalls.map((c) => (c.payload as Payload).attempt)).toEqual([1, 2, 3]);

    const listed = await eventually(async () => {
      const page = await client.listDeadLetters({ triggerId: "t" });
      expect(page.deadLetters).toHaveLength(1);
      return page;
    });
    const [dead] = listed.deadLetters;
    expect(dead).toMatchObject({ deliveryId: "t/s/g/1", triggerId: "t", streamName: "s", groupId: "g", itemId: "a", offset: 1n, attempts: 3 });
    expect(dead.lastError).toContain("cannot digest");
    expect(json(dead.payload!)).toMatchObject({ offset: 1, id: "a", delivery_id: "t/s/g/1", event: { type: "create", data: { poison: true } } });
    expect(listed.nextPageToken).toBe("");
    const [info] = (await client.listTriggers({})).triggers;
    expect(info).toMatchObject({ triggerId: "t", lag: 0n, deadLetters: 1n });
    expect(info.config?.delivery).toBe(TriggerDelivery.AT_LEAST_ONCE);
    const samples = await scrape(`${running.url}/metrics`);
    expect(valueOf(samples, "iii_stream_trigger_dead_letters", { trigger: "t" })).toBe(1);
    expect(valueOf(samples, "iii_stream_trigger_lag", { trigger: "t" })).toBe(0);

    broken = false;
    expect((await client.retryDeadLetters({ triggerId: "t", deliveryIds: [] })).retried).toBe(1);
    await eventually(() => expect(succeeded.map((p) => p.offset)).toEqual([2, 1]));
    expect(succeeded[1]).toMatchObject({ delivery_id: "t/s/g/1", attempt: 1 });
    expect((await client.listDeadLetters({ triggerId: "t" })).deadLetters).toEqual([]);
    expect((await client.retryDeadLetters({ triggerId: "t", deliveryIds: ["t/s/g/1"] })).retried).toBe(0);
  });

  it("waits for a function that is not registered yet, counting the calls as lag", async () => {
    const running = await server({ backend: await backends[name]() });
    const client = triggers(running);
    await client.registerTrigger({
      triggerId: "later",
      type: "stream",
      functionId: "later-fn",
      config: { streamName: "s", delivery: TriggerDelivery.AT_LEAST_ONCE },
    });
    const writer = running.client();
    await writer.set({ streamName: "s", groupId: "g", itemId: "x", data: value({ n: 1 }) });
    // An update by ops: its change carries the ops (for delta subscribers), which the outbox does not keep.
    await writer.update({ streamName: "s", groupId: "g", itemId: "x", ops: [{ op: { case: "increment", value: { path: ["n"], by: 2n } } }] });
    expect((await client.listTriggers({})).triggers[0]).toMatchObject({ lag: 2n, deadLetters: 0n });
    expect(valueOf(await scrape(`${running.url}/metrics`), "iii_stream_trigger_lag", { trigger: "later" })).toBe(2);
    const remote = await functionServer(() => null);
    await client.registerFunction({ functionId: "later-fn", url: remote.url });
    await eventually(() => expect(remote.calls.map((c) => (c.payload as Payload).offset)).toEqual([1, 2]));
    expect(remote.calls.map((c) => (c.payload as Payload).event)).toEqual([
      { type: "create", data: { n: 1 } },
      { type: "update", data: { n: 3 } },
    ]);
    await eventually(async () => expect((await client.listTriggers({})).triggers[0].lag).toBe(0n));
    expect(remote.calls.map((c) => (c.payload as Payload).attempt)).toEqual([1, 1]);
  });

  it("drops the outbox and dead letters of an unregistered trigger; the id registered again starts afresh", async () => {
    const running = await server({ backend: await backends[name]() });
    const client = triggers(running);
    const config = { streamName: "s", delivery: TriggerDelivery.AT_LEAST_ONCE, retryInitialMs: 20, retryMaxMs: 40 };
    await client.registerTrigger({ triggerId: "t", type: "stream", functionId: "absent", config });
    const writer = running.client();
    await writer.set({ streamName: "s", groupId: "g", itemId: "a", data: value(1) });
    expect((await client.listTriggers({})).triggers[0].lag).toBe(1n);
    expect((await client.unregisterTrigger({ triggerId: "t" })).found).toBe(true);
    const remote = await functionServer(() => null);
    await client.registerFunction({ functionId: "fn", url: remote.url });
    await client.registerTrigger({ triggerId: "t", type: "stream", functionId: "fn", config });
    expect((await client.listTriggers({})).triggers[0]).toMatchObject({ lag: 0n, deadLetters: 0n });
    await writer.set({ streamName: "s", groupId: "g", itemId: "a", data: value(2) });
    await eventually(() => expect(remote.calls.map((c) => (c.payload as Payload).offset)).toEqual([2]), 10_000);
  });

  it("replays the retained changes after an offset, in order, with new delivery ids", async () => {
    const running = await server({ backend: await backends[name]() });
    const remote = await functionServer(() => null);
    const { client } = await durableTrigger(running, remote.url, { itemId: "r" });
    const writer = running.client();
    for (let n = 1; n <= 5; n++) await writer.set({ streamName: "s", groupId: "g", itemId: n === 3 ? "other" : "r", data: value({ n }) });
    await eventually(() => expect(remote.calls).toHaveLength(4));
    const originals = remote.calls.map((c) => c.payload as Payload);

    const { scheduled } = await client.replayTrigger({ triggerId: "t", groupId: "g", fromOffset: 1n });
    // Offsets 2, 4 and 5: offset 3 changed another item, which the trigger does not match.
    expect(scheduled).toBe(3);
    await eventually(() => expect(remote.calls).toHaveLength(7));
    const replayed = remote.calls.slice(4).map((c) => c.payload as Payload);
    expect(replayed.map((p) => p.offset)).toEqual([2, 4, 5]);
    expect(replayed.map((p) => p.event)).toEqual(originals.filter((p) => p.offset > 1).map((p) => p.event));
    expect(replayed.map((p) => (p.event as JsonObject).data)).toEqual([{ n: 2 }, { n: 4 }, { n: 5 }]);
    for (const payload of replayed) {
      expect(payload.delivery_id).toMatch(new RegExp(`^t/s/g/${payload.offset}/r[0-9a-f]{8}$`));
      expect(payload.attempt).toBe(1);
    }
  });
});

describe("durable triggers: refusals change nothing", () => {
  it("refuses bad settings, unknown triggers, foreign page tokens and a write past the outbox bound", async () => {
    const running = await server({ backend: memoryBackend({ maxOutbox: 2 }) });
    const client = triggers(running);
    const bad = [
      { type: "stream:join", functionId: "f", config: { delivery: TriggerDelivery.AT_LEAST_ONCE } },
      { type: "stream", functionId: "f", config: { streamName: "s", maxAttempts: 3 } },
      { type: "stream", functionId: "f", config: { streamName: "s", delivery: 7 as TriggerDelivery } },
      { type: "stream", functionId: "f", config: { streamName: "s", delivery: TriggerDelivery.AT_LEAST_ONCE, retryInitialMs: 500, retryMaxMs: 100 } },
    ];
    for (const request of bad) expect(await codeOf(client.registerTrigger(request))).toBe(Code.InvalidArgument);
    expect((await client.listTriggers({})).triggers).toEqual([]);

    expect(await codeOf(client.listDeadLetters({ triggerId: "nope" }))).toBe(Code.NotFound);
    expect(await codeOf(client.replayTrigger({ triggerId: "nope", groupId: "g" }))).toBe(Code.NotFound);
    expect(await codeOf(client.retryDeadLetters({ triggerId: "nope" }))).toBe(Code.NotFound);

    await client.registerTrigger({ triggerId: "t", type: "stream", functionId: "absent", config: { streamName: "s", delivery: TriggerDelivery.AT_LEAST_ONCE } });
    expect(await codeOf(client.listDeadLetters({ triggerId: "t", pageToken: "garbage" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(client.listDeadLetters({ triggerId: "t", pageSize: 5000 }))).toBe(Code.InvalidArgument);
    expect(await codeOf(client.replayTrigger({ triggerId: "t", groupId: "" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(client.replayTrigger({ triggerId: "t", groupId: "g", fromOffset: 99n }))).toBe(Code.FailedPrecondition);

    // The function is absent, so calls stay pending: the third write finds the outbox full.
    const writer = running.client();
    await writer.set({ streamName: "s", groupId: "g", itemId: "a", data: value(1) });
    await writer.set({ streamName: "s", groupId: "g", itemId: "a", data: value(2) });
    const refused = writer.set({ streamName: "s", groupId: "g", itemId: "a", data: value(3) });
    expect(await codeOf(refused)).toBe(Code.ResourceExhausted);
    expect(json((await writer.get({ streamName: "s", groupId: "g", itemId: "a" })).item!.data)).toBe(2);
    // Another stream's writes are not held back.
    await writer.set({ streamName: "other", groupId: "g", itemId: "a", data: value(1) });
    expect((await client.listTriggers({})).triggers[0]).toMatchObject({ lag: 2n });
  });
});

