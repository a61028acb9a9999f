import http from "node:http";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryItemStore, type ItemPageRequest } from "../src/index.js";
import { StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { ALL_TRANSPORTS, startServer, type RunningServer } from "./support/server.js";
import { StreamCursor, waitFor } from "./support/subscribe-view.js";

describe("releasing subscriptions", () => {
  let running: RunningServer;
  const adapter = new MemoryItemStore();

  beforeAll(async () => {
    running = await startServer({ backend: { items: adapter } });
  });
  afterAll(async () => {
    await running?.stop();
  });

  const counts = () => [running.server.stats().subscriptions, running.server.stats().groupFeeds, adapter.watcherCount];

  async function expectReleased(): Promise<void> {
    await waitFor(() => counts().every((count) => count === 0), `every subscription to be released (now ${counts()})`);
  }

  async function openSubscribed(client: Client<typeof StreamService>, groupId: string): Promise<StreamCursor> {
    const cursor = new StreamCursor(client, { streamName: "s", groupId });
    expect((await cursor.next()).message.case).toBe("snapshot");
    return cursor;
  }

  it.each(ALL_TRANSPORTS)("releases it when the client cancels while the stream is idle (%s)", async (kind) => {
    const cursor = await openSubscribed(running.client(kind), `cancel-${kind}`);
    expect(counts()).toEqual([1, 1, 1]);
    cursor.close();
    await expectReleased();
  });

  it("releases it when an HTTP/2 connection drops", async () => {
    for (const create of [createConnectTransport, createGrpcTransport]) {
      const session = new Http2SessionManager(running.url);
      const client = createClient(StreamService, create({ baseUrl: running.url, httpVersion: "2", sessionManager: session }));
      const cursors = await Promise.all(["a", "b", "c"].map((groupId) => openSubscribed(client, `h2-drop-${groupId}`)));
      expect(running.server.stats().subscriptions).toBe(3);
      session.abort();
      await expectReleased();
      for (const cursor of cursors) cursor.close();
    }
  });

  it("releases it when an HTTP/1.1 connection drops", async () => {
    const agent = new http.Agent({ keepAlive: true });
    try {
      const client = createClient(StreamService, createConnectTransport({ baseUrl: running.url, httpVersion: "1.1", nodeOptions: { agent } }));
      const cursors = await Promise.all(["a", "b"].map((groupId) => openSubscribed(client, `h1-drop-${groupId}`)));
      expect(running.server.stats().subscriptions).toBe(2);
      agent.destroy();
      await expectReleased();
      for (const cursor of cursors) cursor.close();
    } finally {
      agent.destroy();
    }
  });

  it("releases every subscription of many that join and leave at once, some before their snapshot arrives", async () => {
    const clients = ALL_TRANSPORTS.map((kind) => running.client(kind));
    const rounds = 150;
    await Promise.all(
      Array.from({ length: rounds }, async (_, index) => {
        const cursor = new StreamCursor(clients[index % clients.length], { streamName: "s", groupId: `churn-${index % 3}`, itemId: index % 4 === 0 ? "x" : undefined });
        try {
          // A third leave at once, possibly before the server has even registered them.
          if (index % 3 !== 0) expect((await cursor.next()).message.case).toBe("snapshot");
        } finally {
          cursor.close();
        }
      }),
    );
    await expectReleased();
  });

  it("registers nothing for a refused subscription", async () => {
    const cursor = new StreamCursor(running.client(), { streamName: "s", groupId: "" });
    try {
      const error = await cursor.next().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    } finally {
      cursor.close();
    }
    expect(counts()).toEqual([0, 0, 0]);
  });
});

/** Storage that takes a while to read a snapshot, so that a client can leave while it is read. */
class SlowSnapshotAdapter extends MemoryItemStore {
  reading = 0;

  override async readItems(streamName: string, groupId: string, page: ItemPageRequest) {
    this.reading++;
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      return await super.readItems(streamName, groupId, page);
    } finally {
      this.reading--;
    }
  }
}

describe("a client that leaves while its snapshot is read", () => {
  it.each(ALL_TRANSPORTS)("releases the subscription (%s)", async (kind) => {
    const adapter = new SlowSnapshotAdapter();
    const running = await startServer({ backend: { items: adapter } });
    try {
      const cursor = new StreamCursor(running.client(kind), { streamName: "s", groupId: "g" });
      await waitFor(() => adapter.reading === 1, "the snapshot read to start");
      cursor.close();
      await waitFor(() => adapter.reading === 0, "the snapshot read to end");
      await waitFor(() => running.server.stats().subscriptions === 0, "the subscription to be released");
      expect([running.server.stats().groupFeeds, adapter.watcherCount]).toEqual([0, 0]);
    } finally {
      await running.stop();
    }
  });
});

describe("server shutdown", () => {
  it("ends every open subscription with UNAVAILABLE at once and leaves none behind", async () => {
    const adapter = new MemoryItemStore();
    const running = await startServer({ backend: { items: adapter }, shutdownGraceMs: 5000 });
    const cursors: StreamCursor[] = [];
    try {
      for (const kind of ALL_TRANSPORTS) {
        const cursor = new StreamCursor(running.client(kind), { streamName: "s", groupId: "g" });
        cursors.push(cursor);
        expect((await cursor.next()).message.case).toBe("snapshot");
      }
      expect(running.server.stats().subscriptions).toBe(ALL_TRANSPORTS.length);
      const stopping = running.stop();
      const endings = await Promise.all(cursors.map((cursor) => cursor.failure()));
      expect(endings.map(({ error }) => error.code)).toEqual(ALL_TRANSPORTS.map(() => Code.Unavailable));
      // Subscriptions end at once, not after the grace period that other requests get.
      expect(running.server.stats().subscriptions).toBe(0);
      expect(running.server.stats().groupFeeds).toBe(0);
      await stopping;
      expect(adapter.watcherCount).toBe(0);
    } finally {
      for (const cursor of cursors) cursor.close();
      await running.stop();
    }
  });
});
