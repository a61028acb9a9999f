import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { streamExchange } from "../src/rpc/unary-fast-path/http2-exchange.js";
import { holdStreamBody, replay, type HeldBody } from "../src/rpc/unary-fast-path/held-body.js";

/** What the server saw of one stream: the body it held, and how the stream ended. */
interface Seen {
  held: HeldBody;
  replayed: Buffer;
  /** Whether the answer's write had finished when Node destroyed the stream. */
  writeFinishedAtDestroy: boolean | undefined;
  closed: Promise<void>;
}

const LIMIT = 64 * 1024;
let server: http2.Http2Server;
let session: http2.ClientHttp2Session;
const seen: Seen[] = [];

beforeAll(async () => {
  server = http2.createServer();
  server.on("stream", (stream, headers) => {
    const { req, res } = streamExchange(stream, headers);
    const destroy = stream.destroy.bind(stream);
    const entry = { writeFinishedAtDestroy: undefined } as Seen;
    entry.closed = new Promise((resolve) => stream.once("close", () => resolve()));
    // Observes the moment of destruction; the stream is destroyed as before.
    stream.destroy = (error?: Error) => {
      entry.writeFinishedAtDestroy ??= stream.writableFinished;
      return destroy(error);
    };
    seen.push(entry);
    void holdStreamBody(stream, req, LIMIT).then(async (held) => {
      entry.held = held;
      const chunks: Buffer[] = [];
      for await (const chunk of replay(held, req)) chunks.push(Buffer.from(chunk));
      entry.replayed = Buffer.concat(chunks);
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.end(Buffer.from(String(entry.replayed.byteLength)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});

afterAll(async () => {
  session.close();
  await new Promise((resolve) => server.close(resolve));
});

/** Sends a body and returns the server's answer (the byte count it read). */
function send(body: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": "POST", ":path": "/" });
    let answer = "";
    stream.on("data", (chunk: Buffer) => (answer += chunk.toString()));
    stream.on("end", () => resolve(answer));
    stream.on("error", reject);
    stream.end(body);
  });
}

function patterned(size: number): Buffer {
  const body = Buffer.alloc(size);
  for (let i = 0; i < size; i++) body[i] = i % 251;
  return body;
}

/** Sends a body of `size` bytes and checks that the server held it whole; what the server saw of its stream, once closed. */
async function sendWhole(size: number): Promise<Seen> {
  const body = patterned(size);
  expect(await send(body)).toBe(String(size));
  const entry = seen.at(-1)!;
  await entry.closed;
  expect(entry.held.complete).toBe(true);
  expect(Buffer.concat(entry.held.chunks).equals(body)).toBe(true);
  return entry;
}

describe("unary fast path: the body of a raw HTTP/2 stream", () => {
  it("holds small bodies whole, and Node destroys the stream only once the answer's write has finished", async () => {
    for (const size of [1, 10, 1000, 16_000]) {
      const entry = await sendWhole(size);
      // Destroyed before its write finished, Node would build an ERR_STREAM_DESTROYED error for the call.
      expect([size, entry.writeFinishedAtDestroy]).toEqual([size, true]);
    }
  });

  // An empty body's end arrives with its headers, and Node emits it at once: held whole all the same.
  it("holds an empty body, and bodies larger than Node's stream buffer, whole (read as it fills)", async () => {
    for (const size of [0, 16_384, 20_000, 60_000]) await sendWhole(size);
  });

  it("stops holding beyond the limit and leaves the rest to be read from the stream", async () => {
    const body = patterned(LIMIT * 3);
    expect(await send(body)).toBe(String(body.byteLength));
    const entry = seen.at(-1)!;
    await entry.closed;
    expect(entry.held.complete).toBe(false);
    expect(entry.held.size).toBeGreaterThan(LIMIT);
    expect(entry.replayed.equals(body)).toBe(true);
  });

  it("closes every stream of a busy session", async () => {
    const before = seen.length;
    await Promise.all(Array.from({ length: 200 }, (_, i) => send(patterned(1 + (i % 50)))));
    const entries = seen.slice(before);
    expect(entries).toHaveLength(200);
    await Promise.all(entries.map((entry) => entry.closed));
    expect(entries.every((entry) => entry.held.complete && entry.writeFinishedAtDestroy === true)).toBe(true);
  });
});
