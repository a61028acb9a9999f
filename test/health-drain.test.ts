/**
 * Health a load balancer can act on (issue 15, health and drain): `/livez` says the
 * process serves, `/readyz` that it takes new clients (store ready, not draining), gRPC
 * health follows readiness, and a stop first drains for `drain_ms`: not ready, but
 * still serving every request, subscription and WebSocket, before it stops as before.
 */
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { configToOptions } from "../src/cli/config-to-options.js";
import { ConfigError } from "../src/cli/config.js";
import { createStreamServer, MemoryItemStore } from "../src/index.js";
import { json, value } from "./conformance/proto-values.js";
import { SubscriptionReader } from "./conformance/subscription-reader.js";
import { spawnServer, type ServerProcess } from "./support/process.js";
import { startServer, transportFor, type RunningServer } from "./support/server.js";
import { eventOf, join, openSocket, wsUrl, type TestSocket } from "./support/ws-client.js";

/** A memory store whose readiness the test sets, as a lost Redis or a full disk would. */
class SwitchableStore extends MemoryItemStore {
  ready = true;
  override isReady(): boolean {
    return this.ready;
  }
}

async function get(url: string, path: string): Promise<{ status: number; body: unknown; cache: string | null }> {
  const response = await fetch(`${url}${path}`);
  return { status: response.status, body: await response.json(), cache: response.headers.get("cache-control") };
}

const grpcHealth = (url: string) => createClient(Health, createGrpcTransport({ baseUrl: url }));

describe("/livez, /readyz and /healthz in process", () => {
  let running: RunningServer;
  const store = new SwitchableStore();

  beforeAll(async () => {
    running = await startServer({ backend: { items: store } });
  });

  afterAll(async () => {
    await running?.stop();
  });

  it("answer 200 while the server is ready, uncached", async () => {
    expect(await get(running.url, "/livez")).toEqual({ status: 200, body: { status: "ok" }, cache: "no-store" });
    expect(await get(running.url, "/readyz")).toEqual({ status: 200, body: { status: "ready", adapter: "memory" }, cache: "no-store" });
    expect(await get(running.url, "/healthz")).toMatchObject({ status: 200, body: { status: "ok", adapter: "memory" } });
    const head = await fetch(`${running.url}/readyz`, { method: "HEAD" });
    expect([head.status, await head.text()]).toEqual([200, ""]);
  });

  it("a store that is not ready makes /readyz, /healthz and gRPC health fail while /livez stays 200", async () => {
    store.ready = false;
    try {
      expect(await get(running.url, "/livez")).toMatchObject({ status: 200, body: { status: "ok" } });
      expect(await get(running.url, "/readyz")).toMatchObject({
        status: 503,
        body: { status: "store_unavailable", adapter: "memory", reason: "the memory store is not ready (see the server's log)" },
      });
      expect(await get(running.url, "/healthz")).toMatchObject({ status: 503, body: { status: "unavailable", adapter: "memory" } });
      expect((await grpcHealth(running.url).check({ service: "" })).status).toBe(ServingStatus.NOT_SERVING);
      expect(running.server.readiness()).toBe("store_unavailable");
    } finally {
      store.ready = true;
    }
    expect((await grpcHealth(running.url).check({ service: "" })).status).toBe(ServingStatus.SERVING);
  });

  it("only GET and HEAD reach them", async () => {
    const post = await fetch(`${running.url}/readyz`, { method: "POST" });
    expect(post.status).toBe(404);
    expect(await post.text()).toContain("GET /livez, /readyz, /healthz");
  });

  it("a server that never started is not ready, and stops without draining", async () => {
    const server = createStreamServer({ port: 0, drainMs: 3_600_000 });
    expect(server.readiness()).toBe("starting");
    await server.stop();
  });

  it("drainMs must be a non-negative integer", () => {
    for (const drainMs of [-1, 1.5, Number.NaN]) {
      expect(() => createStreamServer({ drainMs })).toThrow(/drainMs must be a non-negative integer/);
    }
  });
});

describe("drain_ms from the config file, the environment and the flag", () => {
  it("each overrides the one before, 0 is allowed, and a bad value is named", () => {
    expect(configToOptions({}, {}).options.drainMs).toBeUndefined();
    expect(configToOptions({}, { III_STREAM_DRAIN_MS: "5000" }).options.drainMs).toBe(5000);
    expect(configToOptions({ drainMs: "0" }, { III_STREAM_DRAIN_MS: "5000" }).options.drainMs).toBe(0);
    expect(() => configToOptions({ drainMs: "5s" }, {})).toThrow(new ConfigError('--drain-ms must be a number of milliseconds (0 or more), got "5s"'));
    expect(() => configToOptions({}, { III_STREAM_DRAIN_MS: "-1" })).toThrow(/III_STREAM_DRAIN_MS must be a number of milliseconds/);
    expect(() => configToOptions({ drainMs: "3600001" }, {})).toThrow(/drain_ms/);
  });
});

describe("a stop of the built command line drains first", () => {
  const running: ServerProcess[] = [];
  const clients: { close(): unknown }[] = [];
  afterAll(async () => {
    for (const client of clients) await client.close();
    for (const server of running) server.child.kill("SIGKILL");
  });

  async function start(drainMs: number): Promise<ServerProcess> {
    const server = await spawnServer(["--port", "0", "--adapter", "memory", "--drain-ms", String(drainMs)]);
    running.push(server);
    return server;
  }

  /** Polls until the process has seen the signal: readiness changes only then. */
  async function untilNotReady(url: string): Promise<{ status: number; body: unknown }> {
    for (;;) {
      const readyz = await get(url, "/readyz");
      if (readyz.status !== 200) return readyz;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it("serves everything with readiness false until a second signal stops it at once", async () => {
    // Longer than the test may take: only the second signal ends it.
    const server = await start(600_000);
    const client = createClient(StreamService, transportFor(server.url, "connect-binary-h2"));
    const subscription = new SubscriptionReader(client, { streamName: "drain", groupId: "g" });
    clients.push(subscription);
    await subscription.expectNext("snapshot");
    const socket: TestSocket = await openSocket(wsUrl(server.url, "/"));
    clients.push(socket);
    socket.send(join("s1", "drain", "g"));
    await socket.next(eventOf("s1", "sync"));
    const watch = grpcHealth(server.url).watch({ service: "" })[Symbol.asyncIterator]();
    expect((await watch.next()).value?.status).toBe(ServingStatus.SERVING);

    server.child.kill("SIGTERM");
    expect(await untilNotReady(server.url)).toMatchObject({
      status: 503,
      body: {
        status: "draining",
        adapter: "memory",
        reason: "the server is stopping and drains first (drain_ms): it still serves, but new clients should go to another instance",
      },
    });
    // The log line and /readyz come from the same moment, but the line reaches this process through a pipe.
    await expect.poll(() => server.output()).toContain("SIGTERM received, draining for 600000 ms (not ready, still serving), then shutting down");
    expect((await watch.next()).value?.status).toBe(ServingStatus.NOT_SERVING);
    expect((await grpcHealth(server.url).check({ service: "" })).status).toBe(ServingStatus.NOT_SERVING);
    expect(await get(server.url, "/livez")).toMatchObject({ status: 200, body: { status: "ok" } });
    expect(await get(server.url, "/healthz")).toMatchObject({ status: 503, body: { status: "unavailable" } });

    // Writes, existing subscriptions (Subscribe and the stream socket) and new calls are served.
    const set = await client.set({ streamName: "drain", groupId: "g", itemId: "during", data: value({ n: 1 }) });
    expect(set.revision).toBe(1n);
    const change = await subscription.expectNext("change");
    expect([change.itemId, json(change.data)]).toEqual(["during", { n: 1 }]);
    expect(await socket.next(eventOf("s1", "create"))).toMatchObject({ event: { type: "create", data: { n: 1 } } });
    expect(json((await client.get({ streamName: "drain", groupId: "g", itemId: "during" })).item?.data)).toEqual({ n: 1 });

    server.child.kill("SIGTERM");
    // 143 is the second signal's exit, not the drain's end (0).
    expect(await server.exited).toBe(143);
  });

  it("stops as before once the drain is over, and exits 0", async () => {
    const drainMs = 1500;
    const server = await start(drainMs);
    const client = createClient(StreamService, transportFor(server.url, "connect-binary-h2"));
    const subscription = new SubscriptionReader(client, { streamName: "drain", groupId: "end" });
    clients.push(subscription);
    await subscription.expectNext("snapshot");
    const signalled = Date.now();
    server.child.kill("SIGTERM");
    // The subscription ends as at any stop, after the drain: UNAVAILABLE, to resume elsewhere.
    const ended = await subscription.next().catch((error: unknown) => error);
    expect(ConnectError.from(ended).code).toBe(Code.Unavailable);
    expect(await server.exited).toBe(0);
    // A lower bound only: the drain cannot end early, however loaded the machine.
    expect(Date.now() - signalled).toBeGreaterThanOrEqual(drainMs);
  });
});
