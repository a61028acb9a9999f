import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyLayout } from "../src/adapters/redis/key-layout.js";
import { ChangeType, StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { json, op, value } from "./conformance/proto-values.js";
import { uniqueNames } from "./conformance/unique-names.js";
import { spawnServer, type ServerProcess } from "./support/process.js";
import { deleteKeys, REDIS_URL, redisClient, uniquePrefix } from "./support/redis.js";
import { transportFor } from "./support/server.js";
import { GroupView, ViewReader, waitFor } from "./support/subscribe-view.js";

/*
 * Two real server processes on the shared Redis, as behind a load balancer. One runs
 * from another working directory (the Lua scripts are found next to the sources) and
 * takes the URL from its flag, the other from III_STREAM_REDIS_URL; both read the key
 * prefix from the config file.
 */

const keyPrefix = uniquePrefix("cross");
const keys = new KeyLayout(keyPrefix);
const streamName = uniqueNames("redis-cross");
const dir = mkdtempSync(join(tmpdir(), "iii-stream-redis-cross-"));
const redis = redisClient();
const processes: ServerProcess[] = [];
let a: Client<typeof StreamService>;
let b: Client<typeof StreamService>;

beforeAll(async () => {
  const config = join(dir, "config.yaml");
  writeFileSync(config, `adapter:\n  name: redis\n  config:\n    key_prefix: "${keyPrefix}"\n`);
  const [first, second] = await Promise.all([
    spawnServer(["--config", config, "--adapter", "redis", "--redis-url", REDIS_URL, "--port", "0"], {}, 20_000, dir),
    spawnServer(["--config", config, "--port", "0"], { III_STREAM_REDIS_URL: REDIS_URL }),
  ]);
  processes.push(first, second);
  a = createClient(StreamService, transportFor(first.url, "connect-binary-h2"));
  b = createClient(StreamService, transportFor(second.url, "connect-binary-h2"));
});

afterAll(async () => {
  for (const server of processes) server.child.kill("SIGTERM");
  await Promise.all(processes.map((server) => server.exited));
  await deleteKeys(keyPrefix);
  await redis.quit();
  rmSync(dir, { recursive: true, force: true });
});

function follow(client: Client<typeof StreamService>, stream: string, groupId: string, fromOffset?: number): ViewReader {
  const request = { streamName: stream, groupId, ...(fromOffset === undefined ? {} : { fromOffset: BigInt(fromOffset) }) };
  return new ViewReader(client, request, new GroupView(fromOffset, true));
}

describe("two server processes on one Redis", () => {
  it("250 concurrent increments by 2 through each end at exactly 1000", async () => {
    const s = streamName("increments");
    const increment = (client: Client<typeof StreamService>) =>
      client.update({ streamName: s, groupId: "g", itemId: "counter", ops: [op.increment(["n"], 2)] });
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => increment(i % 2 ? a : b)));
    for (const result of results) expect(result.errors).toEqual([]);
    expect(results.map((r) => Number(r.revision)).sort((x, y) => x - y)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    const { item } = await b.get({ streamName: s, groupId: "g", itemId: "counter" });
    expect([json(item?.data), item?.revision]).toEqual([{ n: 1000 }, 500n]);
  });

  it("fans every change, written through either, out to subscribers on both in offset order", async () => {
    const s = streamName("fan-out");
    await a.set({ streamName: s, groupId: "g", itemId: "seed", data: value({ list: [] }) });
    const readers = [a, a, a, b, b, b].map((client) => follow(client, s, "g"));
    try {
      await waitFor(() => readers.every((r) => r.view.offset !== undefined), "every snapshot");
      // Two writers per process, each working on its own items: creates, updates, deletes.
      const writer = async (client: Client<typeof StreamService>, name: string) => {
        for (let i = 0; i < 30; i++) {
          const itemId = `${name}-${i % 4}`;
          if (i % 7 === 6) await client.delete({ streamName: s, groupId: "g", itemId });
          else if (i % 2) await client.update({ streamName: s, groupId: "g", itemId, ops: [op.append(["list"], i)] });
          else await client.set({ streamName: s, groupId: "g", itemId, data: value({ list: [], big: 9007199254740991 }) });
        }
      };
      await Promise.all([writer(a, "a1"), writer(a, "a2"), writer(b, "b1"), writer(b, "b2")]);
      const { items } = await b.list({ streamName: s, groupId: "g" });
      const final = 1 + 4 * 30;
      await waitFor(() => readers.every((r) => r.view.offset === final), "every subscriber at the last offset");

      const expected = readers[0].view.changes.map((c) => [Number(c.offset), c.type, c.itemId, json(c.data)]);
      expect(expected).toHaveLength(final - 1);
      expect(expected.filter(([, type]) => type === ChangeType.DELETE).length).toBe(16);
      for (const reader of readers) {
        expect(reader.view.problems).toEqual([]);
        expect(reader.view.changes.map((c) => [Number(c.offset), c.type, c.itemId, json(c.data)])).toEqual(expected);
        expect(reader.view.list().map((item) => [item.itemId, item.data])).toEqual(items.map((item) => [item.itemId, json(item.data)]));
      }
    } finally {
      await Promise.all(readers.map((r) => r.leave()));
    }
  });

  it("resumes with from_offset on the other process, from the history in Redis", async () => {
    const s = streamName("resume");
    for (let i = 1; i <= 5; i++) await a.set({ streamName: s, groupId: "g", itemId: `i${i}`, data: value([]) });
    const resumed = follow(b, s, "g", 2);
    try {
      await b.set({ streamName: s, groupId: "g", itemId: "i6", data: value({}) });
      await waitFor(() => resumed.view.offset === 6, "the resumed subscriber");
      expect(resumed.view.problems).toEqual([]);
      expect(resumed.view.snapshots).toEqual([]);
      expect(resumed.view.changes.map((c) => [Number(c.offset), c.itemId, json(c.data)])).toEqual([
        [3, "i3", []],
        [4, "i4", []],
        [5, "i5", []],
        [6, "i6", {}],
      ]);
    } finally {
      await resumed.leave();
    }
  });

  it("subscribes each process only to the groups its own clients watch", async () => {
    const s = streamName("watched");
    const channelOf = (groupId: string) => keys.group(s, groupId).channel;
    const subscribers = async (groupId: string) =>
      ((await redis.call("PUBSUB", "SHARDNUMSUB", channelOf(groupId))) as [string, number])[1];
    const onA = follow(a, s, "x");
    const onB = follow(b, s, "y");
    const bothOnA = [follow(a, s, "z"), follow(a, s, "z")];
    try {
      await waitFor(() => [onA, onB, ...bothOnA].every((r) => r.view.offset !== undefined), "every snapshot");
      // Written through the other process: it publishes, only the watching one listens.
      await b.set({ streamName: s, groupId: "x", itemId: "i", data: value(1) });
      await a.set({ streamName: s, groupId: "y", itemId: "i", data: value(2) });
      await waitFor(() => onA.view.offset === 1 && onB.view.offset === 1, "the changes");
      expect([await subscribers("x"), await subscribers("y"), await subscribers("z"), await subscribers("unwatched")]).toEqual([1, 1, 1, 0]);
    } finally {
      await Promise.all([onA, onB, ...bothOnA].map((r) => r.leave()));
    }
    await waitFor(async () => (await subscribers("x")) + (await subscribers("y")) + (await subscribers("z")) === 0, "the unsubscribes");
  });
});
