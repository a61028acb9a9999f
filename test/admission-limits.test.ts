/**
 * Admission control: the server holds at most `maxSubscriptions` subscriptions, over
 * every transport together, and refuses the next with RESOURCE_EXHAUSTED (nothing was
 * bounded: 20,000 subscriptions starved everyone's writes); an HTTP/2 session may
 * open at most `http2MaxConcurrentStreams` streams at once, advertised in its SETTINGS
 * (5,000 streams on one session were served).
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join as joinPath } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "../src/cli/config.js";
import { configToOptions } from "../src/cli/config-to-options.js";
import { createStreamServer } from "../src/index.js";
import { startServer, type RunningServer, type TransportKind } from "./support/server.js";
import { StreamCursor } from "./support/subscribe-view.js";
import { join, openSocket, wsUrl, type TestSocket } from "./support/ws-client.js";
import { silentLog } from "../src/index.js";

const LIMIT = 4;

let running: RunningServer;
const cursors: StreamCursor[] = [];
const sockets: TestSocket[] = [];

beforeAll(async () => {
  running = await startServer({ maxSubscriptions: LIMIT, http2MaxConcurrentStreams: 7, log: silentLog });
});

afterAll(async () => {
  for (const cursor of cursors) cursor.close();
  await Promise.all(sockets.map((s) => s.close()));
  await running.stop();
});

async function subscribed(kind: TransportKind, groupId: string): Promise<StreamCursor> {
  const cursor = new StreamCursor(running.client(kind), { streamName: "admission", groupId });
  cursors.push(cursor);
  await cursor.next();
  return cursor;
}

async function refusal(kind: TransportKind): Promise<ConnectError> {
  const cursor = new StreamCursor(running.client(kind), { streamName: "admission", groupId: "over" });
  try {
    return (await cursor.failure()).error;
  } finally {
    cursor.close();
  }
}

describe("subscriptions per server", () => {
  it("refuses the subscription beyond the limit on every transport, and admits one again when another ends", async () => {
    const held = [await subscribed("connect-json-h1", "a"), await subscribed("grpc", "b")];
    const socket = await openSocket(wsUrl(running.url, "/"));
    sockets.push(socket);
    socket.send(join("ws-1", "admission", "c"));
    await socket.next((m) => m.subscriptionId === "ws-1");
    held.push(await subscribed("connect-binary-h2", "d"));
    expect(running.server.stats().subscriptions).toBe(LIMIT);

    for (const kind of ["connect-json-h1", "connect-binary-h2", "grpc", "grpc-web"] as TransportKind[]) {
      const error = await refusal(kind);
      expect(error.code, kind).toBe(Code.ResourceExhausted);
      expect(error.rawMessage).toMatch(/at most 4 subscriptions/);
    }
    const from = socket.messages.length;
    socket.send(join("ws-2", "admission", "over"));
    const refused = await socket.next((m) => m.subscriptionId === "ws-2", 5000, from);
    expect(JSON.stringify(refused)).toContain("resource_exhausted");
    expect(running.server.stats().subscriptions).toBe(LIMIT);

    held[0].close();
    await expect.poll(() => running.server.stats().subscriptions).toBe(LIMIT - 1);
    await subscribed("grpc", "e");
    expect(running.server.stats().subscriptions).toBe(LIMIT);
  });
});

describe("HTTP/2 streams per session", () => {
  it("advertises SETTINGS_MAX_CONCURRENT_STREAMS to every HTTP/2 client", async () => {
    const session = http2.connect(running.url);
    try {
      const settings = await new Promise<http2.Settings>((resolve, reject) => {
        session.once("remoteSettings", resolve);
        session.once("error", reject);
      });
      expect(settings.maxConcurrentStreams).toBe(7);
    } finally {
      session.close();
    }
  });

  it("defaults to 1,000 streams per session and 100,000 subscriptions", async () => {
    const server = createStreamServer({ port: 0, log: silentLog });
    await server.start();
    const session = http2.connect(server.url);
    try {
      const settings = await new Promise<http2.Settings>((resolve) => session.once("remoteSettings", resolve));
      expect(settings.maxConcurrentStreams).toBe(1000);
    } finally {
      session.close();
      await server.stop();
    }
  });

  it("refuses limits that are not positive integers by name", () => {
    expect(() => createStreamServer({ maxSubscriptions: 0 })).toThrow(/maxSubscriptions/);
    expect(() => createStreamServer({ http2MaxConcurrentStreams: 1.5 })).toThrow(/http2MaxConcurrentStreams/);
  });
});

describe("configuring admission and reads", () => {
  it("reads max_subscriptions, http2_max_concurrent_streams and public_reads from the config file", () => {
    const path = joinPath(mkdtempSync(joinPath(tmpdir(), "admission-")), "config.yaml");
    writeFileSync(path, "max_subscriptions: 5\nhttp2_max_concurrent_streams: 6\npublic_reads: true\n");
    expect(configToOptions({ config: path, adapter: "memory" }, {}).options).toMatchObject({
      maxSubscriptions: 5,
      http2MaxConcurrentStreams: 6,
      publicReads: true,
    });
    writeFileSync(path, "max_subscriptions: 0\n");
    expect(() => configToOptions({ config: path, adapter: "memory" }, {})).toThrow(ConfigError);
    writeFileSync(path, "public_reads: yes please\n");
    expect(() => configToOptions({ config: path, adapter: "memory" }, {})).toThrow(ConfigError);
  });
});
