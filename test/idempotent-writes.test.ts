import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, createClient, type Client } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError } from "../src/cli/config.js";
import { configToOptions } from "../src/cli/config-to-options.js";
import { connectRedisBackend, createStreamServer, type GroupMessage } from "../src/index.js";
import { StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { expectConnectError } from "./conformance/expect-error.js";
import { json, op, value } from "./conformance/proto-values.js";
import { uniqueNames } from "./conformance/unique-names.js";
import { write } from "./conformance/writes-suite.js";
import { spawnServer, type ServerProcess } from "./support/process.js";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./support/redis.js";
import { startServer, transportFor, type RunningServer } from "./support/server.js";

const root = mkdtempSync(join(tmpdir(), "iii-stream-idempotent-"));
const processes = new Set<ServerProcess>();
const servers: RunningServer[] = [];
const keyPrefix = uniquePrefix("idempotent");
const streamName = uniqueNames("idempotent");

afterAll(async () => {
  for (const server of processes) server.child.kill("SIGKILL");
  await Promise.all([...processes].map((server) => server.exited));
  await Promise.all(servers.map((server) => server.stop()));
  await deleteKeys(keyPrefix);
  rmSync(root, { recursive: true, force: true });
});

async function spawn(args: string[]): Promise<{ server: ServerProcess; client: Client<typeof StreamService> }> {
  const server = await spawnServer(["--port", "0", ...args]);
  processes.add(server);
  void server.exited.then(() => processes.delete(server));
  return { server, client: createClient(StreamService, transportFor(server.url, "connect-binary-h2")) };
}

async function started(options: Parameters<typeof startServer>[0]): Promise<RunningServer> {
  const running = await startServer(options);
  servers.push(running);
  return running;
}

describe("request ids on the file adapter", () => {
  it("are remembered across a SIGKILL and a restart: retries write nothing and answer as before", async () => {
    const dataDir = join(root, "file");
    const key = { streamName: "orders", groupId: "g" };
    let { server, client } = await spawn(["--data-dir", dataDir, "--idempotency-window-ms", "600000"]);
    const set = { ...key, itemId: "a", data: value({ n: 1 }), requestId: "set-a" };
    const update = { ...key, itemId: "a", ops: [op.increment(["n"], 1)], ifRevision: 1n, requestId: "bump-a" };
    const batch = { ...key, writes: [write.set("b", 1), write.update("a", [op.increment(["n"], 10)]), write.delete("b")], requestId: "batch-1" };
    const answers = [await client.set(set), await client.update(update), await client.batch(batch)];

    server.child.kill("SIGKILL");
    await server.exited;
    ({ server, client } = await spawn(["--data-dir", dataDir]));
    expect([await client.set(set), await client.update(update), await client.batch(batch)]).toStrictEqual(answers);
    await expectConnectError(client.set({ ...set, data: value("else") }), Code.FailedPrecondition, /already used/);
    const { item } = await client.get({ ...key, itemId: "a" });
    expect([item?.revision, json(item?.data)]).toStrictEqual([3n, { n: 12 }]);
    expect((await client.set({ ...key, itemId: "z", data: value(0) })).offset).toBe(6n);
  });
});

describe("request ids on a Redis fleet", () => {
  it("are shared: a retry on another instance writes nothing and answers as the first did", async () => {
    const [a, b] = await Promise.all([
      started({ backend: await connectRedisBackend({ url: REDIS_URL, keyPrefix }) }),
      started({ backend: await connectRedisBackend({ url: REDIS_URL, keyPrefix }) }),
    ]);
    const s = streamName("fleet");
    const set = { streamName: s, groupId: "g", itemId: "i", data: value("v"), requestId: "r-set" };
    const first = await a.client().set(set);
    expect(await b.client().set(set)).toStrictEqual(first);
    const batch = { streamName: s, groupId: "g", writes: [write.set("j", 1), write.set("k", 2)], requestId: "r-batch" };
    const batched = await b.client().batch(batch);
    expect(await a.client().batch(batch)).toStrictEqual(batched);
    await expectConnectError(a.client().batch({ ...batch, writes: [write.set("j", 2)] }), Code.FailedPrecondition, /already used/);

    // The same id through both at once: one write, one answer.
    const update = { streamName: s, groupId: "g", itemId: "counter", ops: [op.increment(["n"], 1)], requestId: "r-race" };
    const raced = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).client().update(update)));
    for (const answer of raced) expect(answer).toStrictEqual(raced[0]);
    const { item } = await b.client().get({ streamName: s, groupId: "g", itemId: "counter" });
    expect([item?.revision, json(item?.data)]).toStrictEqual([1n, { n: 1 }]);
    expect((await a.client().set({ streamName: s, groupId: "g", itemId: "last", data: value(0) })).offset).toBe(5n);
  });
});

describe("request ids in one server", () => {
  it("a retry runs no afterCommit hook, so no trigger fires for it", async () => {
    const committed: GroupMessage[] = [];
    const running = await started({ hooks: [{ afterCommit: (message) => committed.push(message) }] });
    const client = running.client();
    const s = streamName("hooks");
    const set = { streamName: s, groupId: "g", itemId: "i", data: value(1), requestId: "once" };
    const send = { streamName: s, groupId: "g", type: "ping", requestId: "ping" };
    const batch = { streamName: s, groupId: "g", writes: [write.set("a", 1), write.set("b", 2)], requestId: "two" };
    for (let round = 0; round < 3; round++) {
      await client.set(set);
      await client.send(send);
      await client.batch(batch);
    }
    expect(committed.map((message) => message.kind)).toStrictEqual(["change", "event", "change", "change"]);
  });

  it("forgets an id once idempotency_window_ms has passed: the same request writes again", async () => {
    const running = await started({ idempotencyWindowMs: 50 });
    const client = running.client();
    const set = { streamName: streamName("window"), groupId: "g", itemId: "i", data: value(1), requestId: "once" };
    expect((await client.set(set)).revision).toBe(1n);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect((await client.set(set)).revision).toBe(2n);
  });
});

describe("idempotency_window_ms", () => {
  it("comes from the config file or the flag (which wins), and a bad value stops the start", () => {
    const path = join(root, "config.yaml");
    writeFileSync(path, "idempotency_window_ms: 60000\n");
    expect(configToOptions({ config: path, adapter: "memory" }, {}).options).toMatchObject({ idempotencyWindowMs: 60_000 });
    expect(configToOptions({ config: path, adapter: "memory", idempotencyWindowMs: "5000" }, {}).options).toMatchObject({ idempotencyWindowMs: 5000 });
    expect(() => configToOptions({ adapter: "memory", idempotencyWindowMs: "0" }, {})).toThrow(/--idempotency-window-ms must be a positive number/);
    expect(() => configToOptions({ adapter: "memory", idempotencyWindowMs: "ten" }, {})).toThrow(ConfigError);
    writeFileSync(path, "idempotency_window_ms: 0\n");
    expect(() => configToOptions({ config: path, adapter: "memory" }, {})).toThrow(ConfigError);
    expect(() => createStreamServer({ port: 0, idempotencyWindowMs: 0 })).toThrow(/idempotencyWindowMs/);
  });
});
