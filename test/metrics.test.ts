import { randomBytes } from "node:crypto";
import http from "node:http";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileStore } from "../src/index.js";
import { silentLog } from "../src/core/log.js";
import { TriggerDispatcher } from "../src/functions/trigger-dispatcher.js";
import { PrometheusMetrics } from "../src/server/prometheus-metrics.js";
import { startServer, type RunningServer } from "./support/server.js";
import { GroupView, json, ViewReader, waitFor } from "./support/subscribe-view.js";
import { openSocket, wsUrl } from "./support/ws-client.js";
import { parseExposition, scrape, valueOf, type Sample } from "./support/prometheus-text.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const KEY = "metrics-test-key-0123456789";
const AUTH = { headers: { authorization: `Bearer ${KEY}` } };
const SET = "iii.stream.v1.StreamService/Set";
const GET = "iii.stream.v1.StreamService/Get";
const SUBSCRIBE = "iii.stream.v1.StreamService/Subscribe";
const QUEUE_LIMIT = 16;

const never = new Promise<never>(() => undefined);

describe("GET /metrics", () => {
  let running: RunningServer;
  const metrics = () => scrape(`${running.url}/metrics`);

  beforeAll(async () => {
    running = await startServer({
      apiKeys: [KEY],
      publicReads: true,
      queueLimits: { maxMessages: QUEUE_LIMIT },
      log: silentLog,
      functions: {
        functionTimeoutMs: 200,
        handlers: {
          ok: () => null,
          fails: () => {
            throw new Error("handler broke");
          },
          hangs: () => never,
          "cond::no": () => false,
        },
        triggers: [
          { triggerId: "t-ok", type: "stream", functionId: "ok", config: { streamName: "trig" } },
          { triggerId: "t-fails", type: "stream", functionId: "fails", config: { streamName: "trig" } },
          { triggerId: "t-hangs", type: "stream", functionId: "hangs", config: { streamName: "trig" } },
          { triggerId: "t-skip", type: "stream", functionId: "ok", config: { streamName: "trig", conditionFunctionId: "cond::no" } },
        ],
      },
    });
  });
  afterAll(async () => {
    await running?.stop();
  });

  it("serves the text format with this server's metrics and the process's", async () => {
    const res = await fetch(`${running.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const name of ["process_cpu_user_seconds_total", "nodejs_heap_size_used_bytes", "iii_stream_store_ready", "iii_stream_websocket_connections"]) {
      expect(text).toContain(`\n${name}`);
    }
    expect(valueOf(parseExposition(text), "iii_stream_store_ready")).toBe(1);
    // No Redis here, so no Redis gauge.
    expect(text).not.toContain("iii_stream_redis_connected");
    expect((await fetch(`${running.url}/metrics`, { method: "POST" })).status).toBe(405);
  });

  it("counts calls by method, code and protocol, refused ones included", async () => {
    const before = await metrics();
    const connect = running.client("connect-binary-h1");
    for (let i = 0; i < 3; i++) await connect.set({ streamName: "rpc", groupId: "g", itemId: `i${i}`, data: json(i) }, AUTH);
    for (let i = 0; i < 2; i++) {
      await expect(connect.set({ streamName: "", groupId: "g", itemId: "i", data: json(1) }, AUTH)).rejects.toMatchObject({ code: Code.InvalidArgument });
    }
    // Without the key: refused by the key check, which the metrics interceptor wraps.
    await expect(running.client("grpc-web").set({ streamName: "rpc", groupId: "g", itemId: "i", data: json(1) })).rejects.toMatchObject({ code: Code.Unauthenticated });
    await running.client("grpc").get({ streamName: "rpc", groupId: "g", itemId: "i0" }, AUTH);

    const after = await metrics();
    const delta = (name: string, labels: Record<string, string>) => valueOf(after, name, labels) - valueOf(before, name, labels);
    expect(delta("iii_stream_rpc_requests_total", { method: SET, code: "ok", protocol: "connect" })).toBe(3);
    expect(delta("iii_stream_rpc_requests_total", { method: SET, code: "invalid_argument", protocol: "connect" })).toBe(2);
    expect(delta("iii_stream_rpc_requests_total", { method: SET, code: "unauthenticated", protocol: "grpc_web" })).toBe(1);
    expect(delta("iii_stream_rpc_requests_total", { method: GET, code: "ok", protocol: "grpc" })).toBe(1);
    expect(delta("iii_stream_rpc_duration_seconds_count", { method: SET, protocol: "connect" })).toBe(5);
    expect(delta("iii_stream_writes_total", { op: "set" })).toBe(3);
    // Without the opt-in, no stream names.
    expect(after.some((s) => "stream" in s.labels)).toBe(false);
  });

  it("counts writes by op and the memory store's commits", async () => {
    const before = await metrics();
    const client = running.client();
    const key = { streamName: "ops", groupId: "g", itemId: "i" };
    await client.set({ ...key, data: json({ n: 1 }) }, AUTH);
    await client.update({ ...key, ops: [{ op: { case: "increment", value: { path: ["n"], by: 1n } } }] }, AUTH);
    await client.send({ streamName: "ops", groupId: "g", type: "ping", data: json(1) }, AUTH);
    await client.delete(key, AUTH);
    const after = await metrics();
    const delta = (name: string, labels: Record<string, string> = {}) => valueOf(after, name, labels) - valueOf(before, name, labels);
    expect([delta("iii_stream_writes_total", { op: "set" }), delta("iii_stream_writes_total", { op: "update" }), delta("iii_stream_writes_total", { op: "send" }), delta("iii_stream_writes_total", { op: "delete" })]).toEqual([1, 1, 1, 1]);
    expect(delta("iii_stream_commit_duration_seconds_count", { adapter: "memory" })).toBe(3);
    expect(delta("iii_stream_commit_batch_size_sum", { adapter: "memory" })).toBe(3);
  });

  it("shows Subscribe subscriptions coming and going, their deliveries, and the call when its stream ends", async () => {
    const before = await metrics();
    const client = running.client("grpc");
    const readers = [0, 1, 2].map(() => new ViewReader(client, { streamName: "subs", groupId: "g" }, new GroupView(undefined, true)));
    await waitFor(async () => valueOf(await metrics(), "iii_stream_subscriptions", { transport: "subscribe" }) === 3, "three subscriptions");
    await running.client().set({ streamName: "subs", groupId: "g", itemId: "i", data: json(1) }, AUTH);
    await waitFor(() => readers.every((r) => r.view.changes.length === 1), "every reader to see the change");
    for (const reader of readers) await reader.leave();
    await waitFor(async () => valueOf(await metrics(), "iii_stream_subscriptions", { transport: "subscribe" }) === 0, "no subscription");

    const after = await metrics();
    const delta = (name: string, labels: Record<string, string> = {}) => valueOf(after, name, labels) - valueOf(before, name, labels);
    expect(delta("iii_stream_subscriptions_ended_total", { transport: "subscribe", reason: "client" })).toBe(3);
    // Three snapshots and three changes, however they were batched.
    expect(delta("iii_stream_deliveries_total", { transport: "subscribe" })).toBe(6);
    expect(delta("iii_stream_delivery_lag_seconds_count")).toBeGreaterThanOrEqual(1);
    expect(delta("iii_stream_rpc_requests_total", { method: SUBSCRIBE, code: "canceled", protocol: "grpc" })).toBe(3);
  });

  it("counts a Subscribe that passed its deadline", async () => {
    const before = await metrics();
    // The timeout in the header only: a client that enforced it too would leave first, which counts as the client leaving.
    const stream = running.client("connect-binary-h2").subscribe({ streamName: "deadline", groupId: "g" }, { headers: { "connect-timeout-ms": "300" } });
    await expect(
      (async () => {
        for await (const _ of stream) void _;
      })(),
    ).rejects.toMatchObject({ code: Code.DeadlineExceeded });
    await waitFor(async () => {
      const after = await metrics();
      return valueOf(after, "iii_stream_subscriptions_ended_total", { transport: "subscribe", reason: "deadline" }) - valueOf(before, "iii_stream_subscriptions_ended_total", { transport: "subscribe", reason: "deadline" }) === 1;
    }, "the deadline end to be counted");
    const after = await metrics();
    expect(valueOf(after, "iii_stream_rpc_requests_total", { method: SUBSCRIBE, code: "deadline_exceeded" }) - valueOf(before, "iii_stream_rpc_requests_total", { method: SUBSCRIBE, code: "deadline_exceeded" })).toBe(1);
  });

  it("counts a subscriber ended for falling behind as slow_consumer", async () => {
    const before = await metrics();
    // A stream-socket client that never reads: its socket fills, then its queue.
    const slow = await openSocket(wsUrl(running.url, "/"));
    slow.ws.pause();
    slow.send({ type: "join", data: { subscriptionId: "slow", streamName: "slow", groupId: "g" } });
    await waitFor(async () => valueOf(await metrics(), "iii_stream_subscriptions", { transport: "stream_socket" }) === 1, "the stream-socket subscription");
    expect(valueOf(await metrics(), "iii_stream_websocket_connections", { protocol: "stream_socket" })).toBe(1);
    const client = running.client();
    const big = randomBytes(24_000).toString("base64");
    for (let i = 0; i < 2000 && running.server.stats().subscriptions > 0; i++) {
      await client.set({ streamName: "slow", groupId: "g", itemId: `i${i % 8}`, data: json(big) }, AUTH);
    }
    await waitFor(async () => valueOf(await metrics(), "iii_stream_subscriptions", { transport: "stream_socket" }) === 0, "the slow subscription to end");
    const after = await metrics();
    expect(valueOf(after, "iii_stream_subscriptions_ended_total", { transport: "stream_socket", reason: "slow_consumer" }) - valueOf(before, "iii_stream_subscriptions_ended_total", { transport: "stream_socket", reason: "slow_consumer" })).toBe(1);
    slow.ws.resume();
    await slow.closed;
    await waitFor(async () => valueOf(await metrics(), "iii_stream_websocket_connections", { protocol: "stream_socket" }) === 0, "the connection to go");
  });

  it("counts trigger calls by outcome: ok, failed, timeout and skipped", async () => {
    const before = await metrics();
    await running.client().set({ streamName: "trig", groupId: "g", itemId: "i", data: json(1) }, AUTH);
    const outcome = (after: Sample[], name: string) => valueOf(after, "iii_stream_trigger_calls_total", { trigger_type: "stream", outcome: name }) - valueOf(before, "iii_stream_trigger_calls_total", { trigger_type: "stream", outcome: name });
    await waitFor(async () => outcome(await metrics(), "timeout") === 1, "the hanging call to time out");
    const after = await metrics();
    expect(["ok", "failed", "timeout", "skipped", "dropped"].map((name) => outcome(after, name))).toEqual([1, 1, 1, 1, 0]);
    expect(valueOf(after, "iii_stream_trigger_duration_seconds_count", { trigger_type: "stream" }) - valueOf(before, "iii_stream_trigger_duration_seconds_count", { trigger_type: "stream" })).toBe(4);
  });
});

describe("trigger calls dropped", () => {
  it("are counted as dropped, when too many are pending and at close", async () => {
    const metrics = new PrometheusMetrics({ streamLabels: false, sources: { storeReady: () => true, storeConnections: () => undefined, webSocketConnections: () => ({}) } });
    const dispatcher = new TriggerDispatcher({ invoke: () => never, log: silentLog, maxPendingCalls: 2, metrics });
    const trigger = { triggerId: "t", type: "stream", functionId: "f", config: {} } as const;
    // Two pending (one running, one queued behind it on the same item), the third dropped.
    for (let i = 0; i < 3; i++) dispatcher.dispatch(trigger, "item", {});
    dispatcher.close();
    const samples = parseExposition(await metrics.registry.metrics());
    // The third on arrival, the queued one at close; the running one goes on.
    expect(valueOf(samples, "iii_stream_trigger_calls_total", { trigger_type: "stream", outcome: "dropped" })).toBe(2);
    expect(valueOf(samples, "iii_stream_trigger_duration_seconds_count")).toBe(0);
  });
});

describe("metrics options", () => {
  it("serve /metrics on metrics.port only, with stream labels when asked", async () => {
    const running = await startServer({ metrics: { port: 0, streamLabels: true } });
    try {
      expect(running.server.metricsPort).not.toBe(running.server.port);
      expect((await fetch(`${running.url}/metrics`)).status).toBe(404);
      const metricsUrl = `http://127.0.0.1:${running.server.metricsPort}`;
      expect((await fetch(`${metricsUrl}/healthz`)).status).toBe(404);
      await running.client().set({ streamName: "labelled", groupId: "g", itemId: "i", data: json(1) });
      expect(valueOf(await scrape(`${metricsUrl}/metrics`), "iii_stream_writes_total", { op: "set", stream: "labelled" })).toBe(1);
    } finally {
      await running.stop();
    }
    // Its port is closed with the server.
    await expect(fetch(`http://127.0.0.1:${running.server.metricsPort}/metrics`)).rejects.toThrow();
  });

  it("turned off: nothing served, calls unaffected", async () => {
    const running = await startServer({ metrics: { enabled: false } });
    try {
      expect((await fetch(`${running.url}/metrics`)).status).toBe(404);
      await running.client().set({ streamName: "s", groupId: "g", itemId: "i", data: json(1) });
    } finally {
      await running.stop();
    }
  });

  it("refuses a metrics port out of range with INVALID_ARGUMENT", async () => {
    await expect(startServer({ metrics: { port: 70_000 } })).rejects.toMatchObject({ message: expect.stringContaining("metrics.port") });
  });

  it("fails the start when the metrics port is taken, naming it", async () => {
    const taken = http.createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      await expect(startServer({ metrics: { port } })).rejects.toThrow(`cannot listen for metrics on 127.0.0.1:${port}`);
    } finally {
      taken.close();
    }
  });
});

describe("the file store's group commit", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "iii-metrics-"));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("observes one commit per batch, with its size", async () => {
    const store = FileStore.open({ dataDir });
    const running = await startServer({ backend: { items: store } });
    try {
      const client = running.client();
      // Concurrent writes of different items queue into one batch per event-loop turn.
      await Promise.all(Array.from({ length: 20 }, (_, i) => client.set({ streamName: "f", groupId: "g", itemId: `i${i}`, data: json(i) })));
      const samples = await scrape(`${running.url}/metrics`);
      const commits = valueOf(samples, "iii_stream_commit_duration_seconds_count", { adapter: "file" });
      expect(valueOf(samples, "iii_stream_commit_batch_size_sum", { adapter: "file" })).toBe(20);
      expect(commits).toBeGreaterThanOrEqual(1);
      expect(commits).toBeLessThan(20);
    } finally {
      await running.stop();
    }
  });
});

