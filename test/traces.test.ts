import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { TriggerService } from "../gen/iii/stream/v1/triggers_pb.js";
import { spawnServer, type ServerProcess } from "./support/process.js";
import { startServer, transportFor, type RunningServer } from "./support/server.js";
import { json } from "./support/subscribe-view.js";
import { silentLog } from "../src/index.js";

/** A remote function as any backend would write it: FunctionService Invoke over plain HTTP, keeping each call's traceparent. */
interface TracedFunction {
  url: string;
  calls: Array<{ functionId: string; traceparent: string | undefined }>;
  close(): Promise<void>;
}

async function startTracedFunction(fails: boolean): Promise<TracedFunction> {
  const calls: TracedFunction["calls"] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      if (req.url !== "/iii.stream.v1.FunctionService/Invoke") return void res.writeHead(404).end();
      const { functionId } = JSON.parse(body) as { functionId: string };
      calls.push({ functionId, traceparent: req.headers.traceparent as string | undefined });
      if (fails) res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ code: "internal", message: "the audit backend broke" }));
      else res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  status?: { code?: number; message?: string };
  attributes: Array<{ key: string; value: { stringValue?: string } }>;
}

/** A small OTLP/HTTP receiver: keeps the spans of every JSON export to /v1/traces. */
async function startOtlpReceiver(): Promise<{ url: string; spans: OtlpSpan[]; paths: string[]; close(): Promise<void> }> {
  const spans: OtlpSpan[] = [];
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      paths.push(req.url ?? "");
      const request = JSON.parse(body) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }> };
      for (const resource of request.resourceSpans) for (const scope of resource.scopeSpans) spans.push(...scope.spans);
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    paths,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function newTraceparent(): { traceId: string; spanId: string; header: string } {
  const traceId = randomBytes(16).toString("hex");
  const spanId = randomBytes(8).toString("hex");
  return { traceId, spanId, header: `00-${traceId}-${spanId}-01` };
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

describe("trace context without an exporter", () => {
  let running: RunningServer;
  let audit: TracedFunction;

  beforeAll(async () => {
    audit = await startTracedFunction(false);
    running = await startServer({ log: silentLog });
    const triggers = createClient(TriggerService, transportFor(running.url, "connect-binary-h2"));
    await triggers.registerFunction({ functionId: "audit", url: audit.url });
    await triggers.registerTrigger({ type: "stream", functionId: "audit", config: { streamName: "orders" } });
  });
  afterAll(async () => {
    await running?.stop();
    await audit?.close();
  });

  it("passes a write's traceparent on to the remote function its trigger calls, as a child", async () => {
    const incoming = newTraceparent();
    await running.client().set({ streamName: "orders", groupId: "g", itemId: "o1", data: json(1) }, { headers: { traceparent: incoming.header } });
    await expect.poll(() => audit.calls.length).toBe(1);
    const [, traceId, parentId] = TRACEPARENT.exec(audit.calls[0].traceparent ?? "") ?? [];
    expect(traceId).toBe(incoming.traceId);
    expect(parentId).toMatch(/^[0-9a-f]{16}$/);
    expect(parentId).not.toBe(incoming.spanId);
  });

  it("sends no traceparent for a write that brought none, or a malformed one", async () => {
    audit.calls.length = 0;
    await running.client().set({ streamName: "orders", groupId: "g", itemId: "o2", data: json(2) });
    await running.client().set({ streamName: "orders", groupId: "g", itemId: "o3", data: json(3) }, { headers: { traceparent: `00-${"0".repeat(32)}-${"1".repeat(16)}-01` } });
    await expect.poll(() => audit.calls.length).toBe(2);
    expect(audit.calls.map((call) => call.traceparent)).toEqual([undefined, undefined]);
  });
});

describe("spans exported over OTLP/HTTP (OTEL_EXPORTER_OTLP_ENDPOINT)", () => {
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let audit: TracedFunction;
  let server: ServerProcess;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    audit = await startTracedFunction(true);
    server = await spawnServer(["--port", "0", "--adapter", "memory", "--log-level", "debug"], {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_SERVICE_NAME: "iii-stream-under-test",
    });
  });
  afterAll(async () => {
    server?.child.kill("SIGKILL");
    await server?.exited;
    await receiver?.close();
    await audit?.close();
  });

  it("has a server span per unary call under the incoming traceparent and a trigger span under it; the function gets the trigger span as parent, and log lines carry the ids", async () => {
    const triggers = createClient(TriggerService, transportFor(server.url, "connect-json-h1"));
    await triggers.registerFunction({ functionId: "audit", url: audit.url });
    await triggers.registerTrigger({ triggerId: "audit-orders", type: "stream", functionId: "audit", config: { streamName: "orders" } });
    const incoming = newTraceparent();
    const stream = createClient(StreamService, transportFor(server.url, "connect-binary-h2"));
    await stream.set({ streamName: "orders", groupId: "g", itemId: "o1", data: json(1) }, { headers: { traceparent: incoming.header } });
    await expect.poll(() => audit.calls.length, { timeout: 10_000 }).toBe(1);
    await expect.poll(() => server.stdout(), { timeout: 10_000 }).toContain("trigger call failed");
    // Stopping exports what is still batched.
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);

    expect(new Set(receiver.paths)).toEqual(new Set(["/v1/traces"]));
    const set = receiver.spans.find((span) => span.name === "iii.stream.v1.StreamService/Set")!;
    expect(set).toMatchObject({ traceId: incoming.traceId, parentSpanId: incoming.spanId, kind: 2 });
    const trigger = receiver.spans.find((span) => span.name === "trigger stream")!;
    expect(trigger).toMatchObject({ traceId: incoming.traceId, parentSpanId: set.spanId, kind: 3, status: { code: 2 } });
    expect(trigger.attributes).toContainEqual({ key: "iii.trigger.id", value: { stringValue: "audit-orders" } });
    expect(audit.calls[0].traceparent).toBe(`00-${incoming.traceId}-${trigger.spanId}-01`);
    // A call without traceparent starts a trace of its own.
    const register = receiver.spans.find((span) => span.name === "iii.stream.v1.TriggerService/RegisterFunction")!;
    expect(register.traceId).not.toBe(incoming.traceId);
    expect(register.parentSpanId ?? "").toBe("");

    const lines = server
      .stdout()
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.find((line) => line.msg === "call" && line.method === "Set")).toMatchObject({
      level: "debug",
      code: "ok",
      peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      trace_id: incoming.traceId,
      span_id: set.spanId,
    });
    expect(lines.find((line) => line.msg === "trigger call failed")).toMatchObject({
      level: "error",
      trigger_id: "audit-orders",
      function_id: "audit",
      stream: "orders",
      error: expect.stringContaining("the audit backend broke"),
      trace_id: incoming.traceId,
      span_id: trigger.spanId,
    });
    expect(server.stderr()).toBe("");
  });
});
