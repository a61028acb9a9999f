import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GroupMessage, RedisItemStore } from "../src/index.js";
import { KeyLayout } from "../src/adapters/redis/key-layout.js";
import { defineConformanceSuite } from "./conformance/suite.js";
import { uniqueNames } from "./conformance/unique-names.js";
import { startRedisCluster, uniquePrefix, type RedisCluster } from "./support/redis.js";
import { waitFor } from "./support/subscribe-view.js";

/*
 * A three-master Redis Cluster started for this file: the whole conformance suite runs
 * on it, then checks of what only a cluster can show (slots, shard channels per node).
 */

const keyPrefix = uniquePrefix("cluster");
const keys = new KeyLayout(keyPrefix);
let cluster: RedisCluster;

beforeAll(async () => {
  cluster = await startRedisCluster();
});

afterAll(async () => {
  await cluster?.stop();
});

defineConformanceSuite("redis-cluster", () => RedisItemStore.connect({ url: cluster.url, keyPrefix }));

describe("on Redis Cluster", () => {
  const streamName = uniqueNames("redis-cluster");
  let writer: RedisItemStore;
  let watcher: RedisItemStore;
  let admin: Cluster;

  beforeAll(async () => {
    [writer, watcher] = await Promise.all([
      RedisItemStore.connect({ url: cluster.url, keyPrefix }),
      RedisItemStore.connect({ url: cluster.url, keyPrefix }),
    ]);
    admin = new Cluster([{ host: "127.0.0.1", port: cluster.nodes[0].port }]);
  });

  afterAll(async () => {
    await Promise.all([writer?.close(), watcher?.close()]);
    admin?.disconnect();
  });

  /** The node (host:port) serving a key's slot. */
  async function ownerOf(key: string): Promise<string> {
    const slot = (await admin.call("CLUSTER", "KEYSLOT", key)) as number;
    const ranges = (await admin.call("CLUSTER", "SLOTS")) as Array<[number, number, [string, number]]>;
    const [, , [host, port]] = ranges.find(([from, to]) => slot >= from && slot <= to)!;
    return `${host}:${port}`;
  }

  it("detects the cluster, keeps each group in one slot and spreads groups over the masters", async () => {
    expect(writer.isCluster).toBe(true);
    const s = streamName("slots");
    const groups = Array.from({ length: 24 }, (_, i) => `group {${i}}:x`);
    await Promise.all(
      groups.map((groupId) =>
        writer.commit({ streamName: s, groupId, itemId: "i", expectedRevision: 0, value: [], timestampMs: Date.now() }),
      ),
    );
    const owners = new Set<string>();
    for (const groupId of groups) {
      const group = keys.group(s, groupId);
      const slots = new Set(
        await Promise.all(
          [group.items, group.order, group.offset, group.history, group.channel].map((key) => admin.call("CLUSTER", "KEYSLOT", key)),
        ),
      );
      expect(slots.size).toBe(1);
      owners.add(await ownerOf(group.items));
    }
    expect(owners.size).toBe(3);
    expect(await watcher.listGroups(s, { after: undefined, limit: 100 })).toEqual([...groups].sort());
  });

  it("fans changes of groups on every master out to a watcher, each group in offset order", async () => {
    const s = streamName("fan-out");
    const groups = Array.from({ length: 12 }, (_, i) => `g${i}`);
    const received = new Map<string, GroupMessage[]>(groups.map((g) => [g, []]));
    const unwatch = await Promise.all(groups.map((g) => watcher.watch(s, g, (m) => received.get(g)!.push(m))));
    try {
      // The watcher subscribed each group's shard channel on the master that owns it.
      for (const g of groups) {
        const channel = keys.group(s, g).channel;
        const [host, port] = (await ownerOf(channel)).split(":");
        const owner = admin.nodes("master").find((n) => n.options.host === host && n.options.port === Number(port))!;
        expect(await owner.call("PUBSUB", "SHARDNUMSUB", channel)).toEqual([channel, 1]);
      }
      const perGroup = 10;
      await Promise.all(
        groups.map(async (groupId) => {
          for (let i = 0; i < perGroup; i++) {
            await writer.commit({ streamName: s, groupId, itemId: `i${i % 3}`, expectedRevision: i < 3 ? 0 : Math.floor(i / 3), value: { i }, timestampMs: Date.now() });
          }
        }),
      );
      await waitFor(() => groups.every((g) => received.get(g)!.length === perGroup), "every change on the watcher");
      for (const g of groups) {
        expect(received.get(g)!.map((m) => m.offset)).toEqual(Array.from({ length: perGroup }, (_, i) => i + 1));
      }
    } finally {
      for (const leave of unwatch) leave();
    }
  });
});
