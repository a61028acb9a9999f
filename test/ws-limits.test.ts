import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { ConfigError, validateConfig } from "../src/cli/config.js";
import type { JsonObject } from "../src/index.js";
import { startServer, type RunningServer } from "./support/server.js";
import { eventOf, join, openSocket, wsUrl, type TestSocket } from "./support/ws-client.js";

const PING_MS = 100;
const MAX_BYTES = 64 * 1024;
const QUEUE = 50;

let running: RunningServer;
const sockets: TestSocket[] = [];

beforeAll(async () => {
  running = await startServer({
    maxMessageBytes: MAX_BYTES,
    queueLimits: { maxMessages: QUEUE },
    allowedOrigins: ["http://app.test"],
    webSocket: { maxSubscriptionsPerConnection: 3 },
  });
});

afterAll(async () => {
  await Promise.all(sockets.map((s) => s.close()));
  await running.stop();
});

async function connect(path = "/", options = {}): Promise<TestSocket> {
  const socket = await openSocket(wsUrl(running.url, path), options);
  sockets.push(socket);
  return socket;
}

describe("stream socket limits", () => {
  it("ignores malformed frames and stays usable", async () => {
    const socket = await connect();
    socket.send("not json");
    socket.send("   ");
    socket.send("[1,2]");
    socket.send({ type: "join", data: { streamName: "s", groupId: "g" } });
    socket.send({ type: "join", data: { subscriptionId: "x", streamName: 5, groupId: "g" } });
    socket.send({ type: "join", data: { subscriptionId: "y", streamName: "s", groupId: "g", fromOffset: -1 } });
    socket.send({ type: "subscribe", data: { subscriptionId: "z", streamName: "s", groupId: "g" } });
    socket.ws.send(Buffer.from([0xff, 0x00, 0x01]), { binary: true });
    // Binary frames holding JSON are read like text, as in the reference.
    socket.ws.send(Buffer.from(JSON.stringify(join("bin", "s", "g"))), { binary: true });
    socket.send(join("ok", "s", "g"));
    await socket.next(eventOf("ok", "sync"));
    expect(socket.messages.map((m) => m.subscriptionId)).toEqual(["bin", "ok"]);
  });

  it("closes a connection that sends a frame over the limit with 4413", async () => {
    const socket = await connect();
    socket.send(join("a", "s", "g", { pad: "x".repeat(MAX_BYTES) }));
    expect((await socket.closed).code).toBe(4413);
  });

  it("refuses joins beyond the per-connection subscription limit with an error event", async () => {
    const socket = await connect();
    for (const id of ["1", "2", "3", "4"]) socket.send(join(id, "s", `limit-${id}`));
    expect(await socket.next(eventOf("4", "error"))).toMatchObject({ event: { code: "resource_exhausted" } });
    expect(socket.messages.filter((m) => (m.event as JsonObject).type === "sync")).toHaveLength(3);
  });

  it("closes a client that stops reading with 4429 once its queue bound is exceeded", async () => {
    const socket = await connect();
    socket.send(join("slow", "s", "slow"));
    await socket.next(eventOf("slow", "sync"));
    socket.ws.pause();
    const data = { blob: "y".repeat(16 * 1024) };
    const connections = running.server.stats().webSockets;
    // The kernel's buffers hold a few megabytes; then the server's send buffer and the queue fill.
    for (let i = 0; i < 2000 && running.server.stats().webSockets === connections; i++) {
      await running.server.engine.set({ streamName: "s", groupId: "slow", itemId: `i${i % 10}` }, data);
      if (i % 20 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    socket.ws.resume();
    const closed = await socket.closed;
    expect(closed.code).toBe(4429);
    expect(closed.reason).toContain("fromOffset");
  });

  it("answers protocol pings, pings its clients and drops those that stop answering", async () => {
    // Its own server: a client paused by another test would not answer such frequent pings either.
    const server = await startServer({ webSocket: { pingIntervalMs: PING_MS } });
    const alive = await openSocket(wsUrl(server.url));
    const pong = new Promise<void>((resolve) => alive.ws.once("pong", () => resolve()));
    alive.ws.ping();
    await pong;
    const serverPings = new Promise<void>((resolve) => alive.ws.once("ping", () => resolve()));
    await serverPings;

    const dead = await openSocket(wsUrl(server.url), { autoPong: false });
    const closed = await dead.closed;
    expect(closed.code).toBe(1006);
    // The live one is still there after several ping rounds.
    await new Promise((resolve) => setTimeout(resolve, PING_MS * 3));
    expect(alive.ws.readyState).toBe(WebSocket.OPEN);
    await alive.close();
    await server.stop();
  });

  it("closes with 4408 a client whose fragmented message never ends, though it answers every ping", async () => {
    const server = await startServer({ webSocket: { pingIntervalMs: PING_MS } });
    try {
      const dribbling = await openSocket(wsUrl(server.url));
      const finishing = await openSocket(wsUrl(server.url));
      // One fragment of a join, and never the rest: the frames are complete, so pongs still get through.
      dribbling.ws.send('{"type":"join",', { fin: false });
      // The other sends a message in fragments, pausing between them, and finishes it within the interval.
      finishing.ws.send('{"type":"join","data":', { fin: false });
      await new Promise((resolve) => setTimeout(resolve, PING_MS * 0.3));
      finishing.ws.send('{"subscriptionId":"f","streamName":"s",', { fin: false });
      await new Promise((resolve) => setTimeout(resolve, PING_MS * 0.3));
      finishing.ws.send('"groupId":"g"}}', { fin: true });
      await finishing.next(eventOf("f", "sync"));
      const closed = await dribbling.closed;
      expect([closed.code, closed.reason]).toEqual([4408, "a message was not finished in time"]);
      await new Promise((resolve) => setTimeout(resolve, PING_MS * 3));
      expect(finishing.ws.readyState).toBe(WebSocket.OPEN);
      await finishing.close();
    } finally {
      await server.stop();
    }
  });

  /** A WebSocket handshake that is refused: its HTTP status and body. */
  async function refusedHandshake(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
    const { hostname, port } = new URL(running.url);
    return new Promise((resolve, reject) => {
      const request = http.request({
        host: hostname,
        port,
        path,
        headers: { connection: "Upgrade", upgrade: "websocket", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13", ...headers },
      });
      request.once("upgrade", () => reject(new Error(`${path} was upgraded`)));
      request.once("response", (response) => {
        let body = "";
        response.on("data", (chunk: Buffer) => (body += chunk.toString()));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      });
      request.once("error", reject);
      request.end();
    });
  }

  it("says why a handshake is refused: unknown path, bad fromOffset or chunks, foreign origin", async () => {
    expect(await refusedHandshake("/nope")).toEqual({ status: 404, body: expect.stringContaining("no WebSocket endpoint at /nope; the WebSocket endpoints are /, /worker") });
    expect(await refusedHandshake("/stream/s")).toMatchObject({ status: 404 });
    expect(await refusedHandshake("/stream/s/g?fromOffset=abc")).toEqual({
      status: 400,
      body: 'fromOffset must be a non-negative integer (an offset seen earlier), got "abc"\n',
    });
    expect(await refusedHandshake("/stream/s/g?fromOffset=-1")).toMatchObject({ status: 400 });
    expect(await refusedHandshake("/stream/s/g?chunks=yes")).toEqual({ status: 400, body: 'chunks must be true or false, got "yes"\n' });
    expect(await refusedHandshake("/stream/%E0%A4%A/g")).toMatchObject({ status: 400, body: expect.stringContaining("percent-encoding") });
    expect(await refusedHandshake("/", { origin: "http://evil.test" })).toEqual({ status: 403, body: "the origin http://evil.test is not in allowed_origins\n" });
    // Valid ones still join.
    const socket = await connect("/stream/s/refusals?chunks=true");
    await socket.next((message) => (message.event as JsonObject | undefined)?.type === "sync");
    await connect("/stream/s/refusals?fromOffset=0&chunks=false");
  });

  it("accepts browser handshakes only from allowed origins", async () => {
    await expect(connect("/", { origin: "http://evil.test" })).rejects.toThrow("403");
    const page = await connect("/", { origin: "http://app.test" });
    page.send(join("o", "s", "g"));
    await page.next(eventOf("o", "sync"));
  });

  it("closes every connection with 1001 when the server stops", async () => {
    const server = await startServer();
    const socket = await openSocket(wsUrl(server.url));
    socket.send(join("j", "s", "g"));
    await socket.next(eventOf("j", "sync"));
    await server.stop();
    expect((await socket.closed).code).toBe(1001);
    expect(server.server.stats().subscriptions).toBe(0);
  });

  it("reads allowed_origins and browser_allowed_functions from the config, origins exactly as browsers send them", () => {
    const config = validateConfig({ allowed_origins: ["*", "https://app.example.com:8443"], browser_allowed_functions: ["stream::get"] }, "test");
    expect(config.allowed_origins).toEqual(["*", "https://app.example.com:8443"]);
    expect(() => validateConfig({ allowed_origins: ["https://app.example.com/"] }, "test")).toThrow(ConfigError);
    expect(() => validateConfig({ allowed_origins: ["app.example.com"] }, "test")).toThrow(ConfigError);
  });
});
