import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer, type ServerOptions } from "ws";
import { type JsonObject, MemoryItemStore } from "../src/index.js";
import { StreamEngine } from "../src/core/engine.js";
import { FlushScheduler } from "../src/core/flush-scheduler.js";
import { StreamSocket } from "../src/ws/stream-socket.js";
import { canWriteBeneath, TextFrameBatch, textFrame } from "../src/ws/text-frame-batch.js";
import { startServer } from "./support/server.js";
import { eventOf, join, openSocket, wsUrl } from "./support/ws-client.js";

/*
 * The stream socket writes whole text frames to the socket beneath ws. That is right
 * only while ws writes each frame of its own whole and at once to the same socket and
 * compresses nothing. These tests fail when ws changes any of that (or the internal
 * names canWriteBeneath reads), and show the fallback through ws.send.
 */

interface Pair {
  server: WebSocket;
  /** The socket ws was given at the upgrade. */
  socket: Duplex;
  client: WebSocket;
  /** What the client received: text or binary, and the data. */
  received: Array<{ binary: boolean; text: string }>;
  /** Each chunk written to the server's socket, as written. */
  written: Buffer[];
  pings: number;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function pair(serverOptions: ServerOptions = {}, clientOptions: { perMessageDeflate?: boolean } = {}): Promise<Pair> {
  const httpServer = http.createServer();
  const wss = new WebSocketServer({ server: httpServer, ...serverOptions });
  await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  cleanups.push(async () => {
    for (const client of wss.clients) client.terminate();
    wss.close();
    await new Promise<void>((resolve) => httpServer.close(() => resolve()));
  });
  const accepted = new Promise<{ ws: WebSocket; socket: Duplex }>((resolve) => wss.once("connection", (ws, req) => resolve({ ws, socket: req.socket })));
  const { port } = httpServer.address() as AddressInfo;
  const client = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: clientOptions.perMessageDeflate ?? false });
  const received: Pair["received"] = [];
  const result = { client, received, written: [] as Buffer[], pings: 0 } as Omit<Pair, "server" | "socket"> & Partial<Pair>;
  client.on("message", (data, binary) => received.push({ binary, text: String(data) }));
  client.on("ping", () => result.pings!++);
  await new Promise<void>((resolve, reject) => {
    client.once("open", () => resolve());
    client.once("error", reject);
  });
  const { ws, socket } = await accepted;
  // Records every write ws (or we) make to the socket, unchanged.
  const write = socket.write.bind(socket) as (chunk: Buffer, ...rest: unknown[]) => boolean;
  socket.write = ((chunk: Buffer, ...rest: unknown[]) => {
    result.written!.push(Buffer.from(chunk));
    return write(chunk, ...rest);
  }) as typeof socket.write;
  return Object.assign(result, { server: ws, socket }) as Pair;
}

/** Splits server-to-client bytes into frames; throws on a partial one. */
function frames(bytes: Buffer): Array<{ opcode: number; compressed: boolean; payload: Buffer }> {
  const out: Array<{ opcode: number; compressed: boolean; payload: Buffer }> = [];
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at < 2) throw new Error("partial frame header");
    const opcode = bytes[at] & 0x0f;
    expect(bytes[at] & 0x80, "FIN").toBe(0x80);
    expect(bytes[at + 1] & 0x80, "unmasked").toBe(0);
    let length = bytes[at + 1] & 0x7f;
    let start = at + 2;
    if (length === 126) {
      length = bytes.readUInt16BE(at + 2);
      start = at + 4;
    } else if (length === 127) {
      length = Number(bytes.readBigUInt64BE(at + 2));
      start = at + 10;
    }
    if (start + length > bytes.length) throw new Error("partial frame payload");
    out.push({ opcode, compressed: (bytes[at] & 0x40) !== 0, payload: bytes.subarray(start, start + length) });
    at = start + length;
  }
  return out;
}

const until = async (check: () => boolean, timeoutMs = 5000) => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

describe("writing frames beneath ws", () => {
  it("is allowed on a connection without extensions: ws keeps its socket and Sender where canWriteBeneath looks", async () => {
    const { server, socket } = await pair();
    expect(server.extensions).toBe("");
    expect(canWriteBeneath(server, socket)).toBe(true);
  });

  it("is what the server's stream socket gets from a client that offers permessage-deflate (ws's default)", async () => {
    const running = await startServer();
    cleanups.push(() => running.stop());
    const socket = await openSocket(wsUrl(running.url, "/"));
    cleanups.push(async () => void (await socket.close()));
    expect(socket.ws.extensions).toBe("");
    socket.send(join("s1", "chat", "room"));
    await socket.next(eventOf("s1", "sync"));
  });

  it("is refused when permessage-deflate is negotiated, or for another socket", async () => {
    const deflating = await pair({ perMessageDeflate: true }, { perMessageDeflate: true });
    expect(deflating.server.extensions).toContain("permessage-deflate");
    expect(canWriteBeneath(deflating.server, deflating.socket)).toBe(false);
    const plain = await pair();
    expect(canWriteBeneath(plain.server, deflating.socket)).toBe(false);
  });

  it("relies on ws writing each frame of its own whole, at once, and nothing later", async () => {
    const p = await pair();
    const own: Array<[string, () => void]> = [
      ["ping", () => p.server.ping(Buffer.from("are you there"))],
      ["text message", () => p.server.send("x".repeat(300))],
      ["binary message", () => p.server.send(Buffer.alloc(70_000, 1))],
      ["pong", () => p.server.pong(Buffer.from("here"))],
    ];
    for (const [name, send] of own) {
      p.written.length = 0;
      send();
      // Synchronously: every byte of the frame is already written, as whole frames.
      const now = Buffer.concat(p.written);
      expect(frames(now).length, name).toBe(1);
      await new Promise((resolve) => setImmediate(resolve));
      expect(Buffer.concat(p.written).length, `${name}: nothing written afterwards`).toBe(now.length);
    }
    // The pong ws sends by itself for a client's ping is one whole frame too.
    p.written.length = 0;
    p.client.ping(Buffer.from("ping from the client"));
    await until(() => p.written.length > 0);
    expect(frames(Buffer.concat(p.written)).map((f) => f.opcode)).toEqual([0x0a]);
  });

  it("keeps frames written beneath ws and ws's own in the order they were written", async () => {
    const p = await pair();
    p.socket.write(textFrame("first"));
    p.server.ping();
    p.socket.write(textFrame("second"));
    p.server.send("third");
    const batch = new TextFrameBatch();
    batch.add(Buffer.from("four"), Buffer.from("th"));
    batch.add(Buffer.from("fif"), Buffer.from("th"));
    p.socket.write(batch.take()!);
    await until(() => p.received.length === 5);
    expect(p.received).toEqual(["first", "second", "third", "fourth", "fifth"].map((text) => ({ binary: false, text })));
    expect(p.pings).toBe(1);
  });

  it("builds valid text frames at every header size, which ws on the other side reads back", async () => {
    const p = await pair();
    const sizes = [0, 1, 125, 126, 127, 65_535, 65_536, 200_000];
    const batch = new TextFrameBatch();
    let bytes = 0;
    for (const size of sizes) {
      const head = Buffer.alloc(size >> 1, "a");
      const tail = Buffer.alloc(size - head.length, "b");
      bytes += batch.add(head, tail);
    }
    expect(batch.byteLength).toBe(bytes);
    const out = batch.take()!;
    expect(out.length).toBe(bytes);
    expect(batch.take()).toBeUndefined();
    expect(frames(out).map((f) => f.payload.length)).toEqual(sizes);
    p.socket.write(out);
    await until(() => p.received.length === sizes.length);
    expect(p.received.map((m) => [m.binary, m.text.length])).toEqual(sizes.map((size) => [false, size]));
  });
});

describe("a stream socket on a connection that negotiated permessage-deflate", () => {
  it("sends through ws.send: the same text messages, in order", async () => {
    const engine = new StreamEngine({ store: new MemoryItemStore() });
    cleanups.push(() => engine.close());
    const p = await pair({ perMessageDeflate: { threshold: 0 } }, { perMessageDeflate: true });
    const socket = new StreamSocket(p.server, p.socket, {
      engine,
      context: null,
      peer: "",
      maxSubscriptions: 10,
      close: () => undefined,
      scheduler: new FlushScheduler(),
    });
    cleanups.push(async () => socket.dispose());
    expect(socket.writesBeneath).toBe(false);
    await engine.set({ streamName: "s", groupId: "g", itemId: "a" }, { n: 0 });
    socket.receive({ type: "join", data: { subscriptionId: "sub", streamName: "s", groupId: "g" } });
    socket.receive({ type: "join", data: { subscriptionId: "", streamName: "s", groupId: "g" } });
    socket.receive({ type: "join", data: { subscriptionId: "bad", streamName: "", groupId: "g" } });
    await until(() => p.received.length === 2);
    for (let n = 1; n <= 3; n++) await engine.set({ streamName: "s", groupId: "g", itemId: "a" }, { n });
    await until(() => p.received.length === 5);
    expect(p.received.every((m) => !m.binary)).toBe(true);
    const messages = p.received.map((m) => JSON.parse(m.text) as JsonObject);
    // The refusal is written as it happens, the sync with the next flush: as on the raw path.
    expect(messages.map((m) => [m.subscriptionId, (m.event as JsonObject).type, m.offset ?? null])).toEqual([
      ["bad", "error", null],
      ["sub", "sync", 1],
      ["sub", "update", 2],
      ["sub", "update", 3],
      ["sub", "update", 4],
    ]);
    expect(messages[4]).toMatchObject({ type: "stream", streamName: "s", groupId: "g", id: "a", event: { data: { n: 3 } }, revision: 4 });
    // The compressed frames ws wrote have RSV1 set; none was written beneath it.
    const sent = frames(Buffer.concat(p.written));
    expect(sent.map((f) => [f.opcode, f.compressed])).toEqual(sent.map(() => [1, true]));
  });
});
