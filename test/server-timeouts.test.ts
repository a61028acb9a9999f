import http2 from "node:http2";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type RunningServer } from "./support/server.js";
import { json } from "./support/subscribe-view.js";
import { openSocket, wsUrl } from "./support/ws-client.js";

/**
 * The attacks of "no connection ever times out", against a real server whose limits are
 * lowered so that each runs in about a second: every connection that stalls is closed
 * within its limit, while a Subscribe and a WebSocket that are merely quiet stay open.
 */
const LIMITS = {
  firstBytesTimeoutMs: 300,
  headersTimeoutMs: 500,
  requestTimeoutMs: 800,
  keepAliveTimeoutMs: 400,
  http2IdleTimeoutMs: 500,
};
/** Every limit above plus the checker's granularity and a loaded machine's slack. */
const CLOSED_WITHIN_MS = 2500;

let running: RunningServer;
let port: number;

beforeAll(async () => {
  running = await startServer({ connections: LIMITS, heartbeatMs: 60_000 });
  port = Number(new URL(running.url).port);
});

afterAll(async () => {
  await running?.stop();
});

interface RawConnection {
  socket: net.Socket;
  /** Everything the server sent. */
  received(): string;
  /** Resolves with the ms from connecting until the server closed the connection. */
  closed: Promise<number>;
}

/** A keep-alive request: its connection stays open after the answer (a GET of /healthz would close it). */
const GET_ITEM = (() => {
  const body = '{"streamName":"t","groupId":"g","itemId":"i"}';
  return `POST /iii.stream.v1.StreamService/Get HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
})();

function connectRaw(options: { port?: number; localAddress?: string } = {}): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port: options.port ?? port, host: "127.0.0.1", localAddress: options.localAddress });
    let text = "";
    const start = Date.now();
    socket.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")));
    socket.on("error", () => {});
    const closed = new Promise<number>((done) => socket.once("close", () => done(Date.now() - start)));
    socket.once("connect", () => resolve({ socket, received: () => text, closed }));
    socket.once("error", reject);
  });
}

/** Writes `text` one byte every `everyMs` until the socket closes. */
function dribble(socket: net.Socket, text: string, everyMs: number): void {
  let at = 0;
  const timer = setInterval(() => {
    if (socket.destroyed) return clearInterval(timer);
    socket.write(text[at % text.length]);
    at++;
  }, everyMs);
  socket.once("close", () => clearInterval(timer));
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} still open after ${ms} ms`)), ms))]);
}

describe("connections that stall are closed", () => {
  it("an idle connection that never sends a byte", async () => {
    const c = await connectRaw();
    const ms = await within(c.closed, CLOSED_WITHIN_MS, "idle connection");
    expect(ms).toBeGreaterThanOrEqual(LIMITS.firstBytesTimeoutMs - 50);
  });

  it('a bare "P" and a partial HTTP/2 preface', async () => {
    const p = await connectRaw();
    p.socket.write("P");
    const preface = await connectRaw();
    preface.socket.write("PRI * HTTP/2.0\r\n");
    await within(p.closed, CLOSED_WITHIN_MS, 'bare "P"');
    await within(preface.closed, CLOSED_WITHIN_MS, "partial preface");
  });

  it("slowloris headers at one byte per 100 ms", async () => {
    const c = await connectRaw();
    c.socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    dribble(c.socket, "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 100);
    await within(c.closed, CLOSED_WITHIN_MS, "slowloris");
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it("a body dribbled at one byte per 100 ms", async () => {
    const c = await connectRaw();
    c.socket.write("POST /iii.stream.v1.StreamService/Get HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 10000\r\n\r\n");
    dribble(c.socket, " ", 100);
    await within(c.closed, CLOSED_WITHIN_MS, "dribbled body");
  });

  it("an HTTP/1.1 keep-alive connection left idle after a response", async () => {
    const c = await connectRaw();
    c.socket.write(GET_ITEM);
    const ms = await within(c.closed, CLOSED_WITHIN_MS, "idle keep-alive");
    expect(c.received()).toMatch(/^HTTP\/1\.1 200 /);
    expect(c.received()).not.toMatch(/connection: close/i);
    expect(ms).toBeGreaterThanOrEqual(LIMITS.keepAliveTimeoutMs - 50);
  });

  it("an HTTP/2 session with no open stream", async () => {
    const session = http2.connect(running.url);
    session.on("error", () => {});
    const closed = new Promise<void>((resolve) => session.once("close", () => resolve()));
    await new Promise<void>((resolve, reject) => {
      const req = session.request({ ":path": "/healthz" });
      req.on("response", () => {});
      req.resume();
      req.once("end", () => resolve());
      req.once("error", reject);
    });
    await within(closed, CLOSED_WITHIN_MS, "idle HTTP/2 session");
  });
});

describe("long-lived calls are never cut", () => {
  it("a quiet Subscribe (HTTP/1.1 and HTTP/2) and an idle WebSocket outlive every limit", async () => {
    const client = running.client("connect-json-h1");
    await client.set({ streamName: "t", groupId: "quiet", itemId: "a", data: json(1) });
    const subscribers = (["connect-json-h1", "grpc"] as const).map((kind) => {
      const abort = new AbortController();
      const seen: unknown[] = [];
      const done = (async () => {
        for await (const message of running.client(kind).subscribe({ streamName: "t", groupId: "quiet" }, { signal: abort.signal })) {
          seen.push(message);
        }
      })().catch((error: unknown) => error);
      return { abort, seen, done };
    });
    const ws = await openSocket(wsUrl(running.url, "/stream/t/quiet"));
    await new Promise((resolve) => setTimeout(resolve, CLOSED_WITHIN_MS + 500));
    // The later write still reaches every one of them.
    const before = subscribers.map((s) => s.seen.length);
    const wsBefore = ws.messages.length;
    await client.set({ streamName: "t", groupId: "quiet", itemId: "b", data: json(2) });
    await expect.poll(() => subscribers.every((s, i) => s.seen.length > before[i]), { timeout: 5000 }).toBe(true);
    await expect.poll(() => ws.messages.length > wsBefore, { timeout: 5000 }).toBe(true);
    expect(ws.ws.readyState).toBe(ws.ws.OPEN);
    for (const s of subscribers) s.abort.abort();
    await Promise.all(subscribers.map((s) => s.done));
    await ws.close();
  });
});

describe("the connection cap", () => {
  it("refuses the connection beyond the total, and serves again once one has closed", async () => {
    const capped = await startServer({ connections: { maxConnections: 3 } });
    const cappedPort = Number(new URL(capped.url).port);
    try {
      const open = await Promise.all([0, 1, 2].map(() => connectRaw({ port: cappedPort })));
      for (const c of open) c.socket.write(GET_ITEM);
      await expect.poll(() => open.every((c) => c.received().startsWith("HTTP/1.1 200")), { timeout: 5000 }).toBe(true);
      const refused = await connectRaw({ port: cappedPort });
      refused.socket.write(GET_ITEM);
      await within(refused.closed, 1000, "the connection beyond the cap");
      expect(refused.received()).toBe("");
      expect(capped.server.connectionStats().refused).toBe(1);

      open[0].socket.destroy();
      await expect.poll(() => capped.server.connectionStats().open, { timeout: 5000 }).toBe(2);
      const again = await connectRaw({ port: cappedPort });
      again.socket.write(GET_ITEM);
      await expect.poll(() => again.received(), { timeout: 5000 }).toMatch(/^HTTP\/1\.1 200 /);
      for (const c of [...open, again]) c.socket.destroy();
    } finally {
      await capped.stop();
    }
  });

  it("refuses the connection beyond the per-address cap, and still serves other addresses", async () => {
    const capped = await startServer({ connections: { maxConnectionsPerAddress: 2 } });
    const cappedPort = Number(new URL(capped.url).port);
    try {
      const open = await Promise.all([0, 1].map(() => connectRaw({ port: cappedPort, localAddress: "127.0.0.1" })));
      await expect.poll(() => capped.server.connectionStats().open, { timeout: 5000 }).toBe(2);
      const refused = await connectRaw({ port: cappedPort, localAddress: "127.0.0.1" });
      await within(refused.closed, 1000, "the connection beyond the per-address cap");
      const other = await connectRaw({ port: cappedPort, localAddress: "127.0.0.2" });
      other.socket.write(GET_ITEM);
      await expect.poll(() => other.received(), { timeout: 5000 }).toMatch(/^HTTP\/1\.1 200 /);
      expect(capped.server.connectionStats().refused).toBe(1);
      for (const c of [...open, other]) c.socket.destroy();
    } finally {
      await capped.stop();
    }
  });
});
