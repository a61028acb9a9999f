import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectRedisBackend, RedisItemStore } from "../src/index.js";
import type { Change, StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { json, op, value } from "./conformance/proto-values.js";
import { uniqueNames } from "./conformance/unique-names.js";
import { redisClient, startRedisServer, uniquePrefix, type RedisServer } from "./support/redis.js";
import { startServer, type RunningServer } from "./support/server.js";
import { waitFor } from "./support/subscribe-view.js";

/*
 * Faults against a redis-server of our own (the shared one must not be disturbed):
 * it is killed and restarted in the middle of a run, and its subscriber connections
 * are cut while another instance writes.
 */

const keyPrefix = uniquePrefix("faults");
const streamName = uniqueNames("redis-faults");
let redis: RedisServer;
const servers: RunningServer[] = [];
const adapters: RedisItemStore[] = [];

beforeAll(async () => {
  // Append-only with fsync on every write: an acknowledged write survives the SIGKILL.
  redis = await startRedisServer({ durable: true });
});

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
  await Promise.all(adapters.map((adapter) => adapter.close()));
  await redis?.stop();
});

async function serve(historyLimit?: number): Promise<RunningServer> {
  const backend = await connectRedisBackend({ url: redis.url, keyPrefix, historyLimit, commandTimeoutMs: 2000 });
  const server = await startServer({ backend });
  servers.push(server);
  return server;
}

async function connect(historyLimit?: number): Promise<RedisItemStore> {
  const adapter = await RedisItemStore.connect({ url: redis.url, keyPrefix, historyLimit });
  adapters.push(adapter);
  return adapter;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Follows a group the way a client should: when the subscription ends with
 * UNAVAILABLE it subscribes again from the last offset it saw.
 */
class Follower {
  readonly changes: Change[] = [];
  readonly snapshotOffsets: number[] = [];
  offset: number | undefined;
  resumes = 0;
  failure: string | undefined;
  private readonly abort = new AbortController();
  private readonly done: Promise<void>;

  constructor(
    private readonly client: Client<typeof StreamService>,
    private readonly stream: string,
    private readonly groupId: string,
  ) {
    this.done = this.run();
  }

  private async run(): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (!this.abort.signal.aborted && Date.now() < deadline) {
      try {
        const fromOffset = this.offset === undefined ? undefined : BigInt(this.offset);
        const responses = this.client.subscribe(
          { streamName: this.stream, groupId: this.groupId, fromOffset },
          { signal: this.abort.signal },
        );
        for await (const response of responses) {
          const message = response.message;
          if (message.case === "snapshot") {
            this.offset = Number(message.value.offset);
            this.snapshotOffsets.push(this.offset);
          } else if (message.case === "change") {
            this.changes.push(message.value);
            this.offset = Number(message.value.offset);
          }
        }
      } catch (error) {
        if (this.abort.signal.aborted) return;
        const connectError = ConnectError.from(error);
        if (connectError.code !== Code.Unavailable) {
          this.failure = connectError.message;
          return;
        }
        this.resumes++;
        await sleep(50);
      }
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.done;
  }
}

async function health(server: RunningServer): Promise<number> {
  return (await fetch(`${server.url}/healthz`)).status;
}

describe("Redis stops and comes back in the middle of a run", () => {
  it("fails writes with UNAVAILABLE meanwhile, applies none twice, and subscribers see every change once", async () => {
    const server = await serve();
    const client = server.client();
    const s = streamName("restart");
    const follower = new Follower(client, s, "g");
    await waitFor(() => follower.offset !== undefined, "the first snapshot");

    const acknowledged: Array<{ revision: number; offset: number; n: number }> = [];
    const failures: Code[] = [];
    let phase: "before" | "down" | "after" = "before";
    const deadline = Date.now() + 20_000;
    // Four concurrent writers, so that some increments are in flight when Redis dies.
    const writer = async () => {
      while (Date.now() < deadline && !(phase === "after" && acknowledged.length >= 300)) {
        try {
          const result = await client.update({ streamName: s, groupId: "g", itemId: "counter", ops: [op.increment(["n"], 1)] });
          acknowledged.push({ revision: Number(result.revision), offset: Number(result.offset), n: (json(result.newValue) as { n: number }).n });
        } catch (error) {
          failures.push(ConnectError.from(error).code);
          await sleep(20);
        }
      }
    };
    const writers = Promise.all([writer(), writer(), writer(), writer()]);

    await waitFor(() => acknowledged.length >= 100, "100 writes before the stop");
    await redis.kill();
    phase = "down";
    const failuresBefore = failures.length;
    await waitFor(() => failures.length >= failuresBefore + 8, "writes failing while Redis is down");
    expect(await health(server)).toBe(503);
    expect(server.server.engine.isReady()).toBe(false);

    await redis.restart();
    await waitFor(async () => (await health(server)) === 200, "health after the restart");
    phase = "after";
    await writers;

    // Every failure says UNAVAILABLE; nothing else leaked out.
    expect(failures.length).toBeGreaterThan(0);
    expect(new Set(failures)).toEqual(new Set([Code.Unavailable]));
    // Acknowledged writes are stored: each one's revision is unique, and the final
    // value counts at least every acknowledged increment and at most every attempt.
    const { item } = await client.get({ streamName: s, groupId: "g", itemId: "counter" });
    const finalRevision = Number(item!.revision);
    expect(json(item!.data)).toEqual({ n: finalRevision });
    expect(new Set(acknowledged.map((a) => a.revision)).size).toBe(acknowledged.length);
    for (const a of acknowledged) expect(a.n).toBe(a.revision);
    expect(finalRevision).toBeGreaterThanOrEqual(acknowledged.length);
    expect(finalRevision).toBeLessThanOrEqual(acknowledged.length + failures.length);

    // The subscriber saw every stored change exactly once, in order, with no new snapshot.
    await waitFor(() => follower.offset === finalRevision, "the subscriber to catch up");
    await follower.stop();
    expect(follower.failure).toBeUndefined();
    expect(follower.snapshotOffsets).toEqual([0]);
    expect(follower.changes.map((c) => Number(c.offset))).toEqual(Array.from({ length: finalRevision }, (_, i) => i + 1));
    expect(follower.changes.map((c) => json(c.data))).toEqual(Array.from({ length: finalRevision }, (_, i) => ({ n: i + 1 })));
    for (const a of acknowledged) expect(json(follower.changes[a.offset - 1].data)).toEqual({ n: a.n });
  });
});

describe("the subscriber connection drops while another instance writes", () => {
  /** Cuts every subscriber connection of our redis-server, then writes at once through `writer`. */
  async function cutAndWrite(writeAll: () => Promise<unknown>): Promise<void> {
    const admin = redisClient(redis.url);
    try {
      const killed = (await admin.call("CLIENT", "KILL", "TYPE", "pubsub")) as number;
      expect(killed).toBeGreaterThan(0);
      // The cut connections reconnect after 50 ms at the earliest; these land before.
      await writeAll();
    } finally {
      await admin.quit();
    }
  }

  it("replays what was published meanwhile from history, even when nothing else is written", async () => {
    const server = await serve();
    const other = await connect();
    const s = streamName("replay");
    const follower = new Follower(server.client(), s, "g");
    await waitFor(() => follower.offset !== undefined, "the first snapshot");
    await server.client().set({ streamName: s, groupId: "g", itemId: "a", data: value(1) });
    await waitFor(() => follower.offset === 1, "the first change");

    await cutAndWrite(() =>
      Promise.all(
        ["b", "c", "d"].map((itemId) =>
          other.commit({ streamName: s, groupId: "g", itemId, expectedRevision: 0, value: [], timestampMs: Date.now() }),
        ),
      ),
    );
    await waitFor(() => follower.offset === 4, "the changes published while disconnected");
    await follower.stop();
    expect(follower.failure).toBeUndefined();
    expect(follower.resumes).toBe(0);
    expect(follower.changes.map((c) => [Number(c.offset), c.itemId, json(c.data)])).toEqual([
      [1, "a", 1],
      [2, "b", []],
      [3, "c", []],
      [4, "d", []],
    ]);
  });

  it("ends the subscribers with UNAVAILABLE when the history no longer holds what was missed; they resume", async () => {
    const server = await serve(2);
    const other = await connect(2);
    const s = streamName("lost");
    const client = server.client();
    await client.set({ streamName: s, groupId: "g", itemId: "a", data: value(0) });
    const follower = new Follower(client, s, "g");
    await waitFor(() => follower.offset === 1, "the first snapshot");

    await cutAndWrite(async () => {
      for (let i = 1; i <= 5; i++) {
        await other.commit({ streamName: s, groupId: "g", itemId: "a", expectedRevision: i, value: i, timestampMs: Date.now() });
      }
    });
    await waitFor(() => follower.offset === 6, "the resumed subscription");
    await client.set({ streamName: s, groupId: "g", itemId: "a", data: value(6) });
    await waitFor(() => follower.offset === 7, "a change after the resume");
    await follower.stop();
    expect(follower.failure).toBeUndefined();
    expect(follower.resumes).toBe(1);
    // from_offset 1 is older than the history (offsets 5 and 6): the resume starts from a snapshot.
    expect(follower.snapshotOffsets).toEqual([1, 6]);
    expect(follower.changes.map((c) => Number(c.offset))).toEqual([7]);
  });
});
