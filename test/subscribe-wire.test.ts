import http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryItemStore } from "../src/index.js";
import { SubscribeRequestSchema, SubscribeResponseSchema, type SubscribeResponse } from "../gen/iii/stream/v1/stream_pb.js";
import { startServer, type RunningServer } from "./support/server.js";
import { json, waitFor } from "./support/subscribe-view.js";

/*
 * Subscribe as raw bytes: what the dedicated streaming path puts on the wire for each
 * protocol, read by hand-made HTTP/2 and HTTP/1.1 requests rather than by a client
 * library that would hide framing mistakes.
 */

const PATH = "/iii.stream.v1.StreamService/Subscribe";
const adapter = new MemoryItemStore();
let running: RunningServer;
let session: http2.ClientHttp2Session;

beforeAll(async () => {
  running = await startServer({ backend: { items: adapter } });
  session = http2.connect(running.url);
  await running.client().set({ streamName: "s", groupId: "g", itemId: "a", data: json({ n: 1 }) });
});

afterAll(async () => {
  session?.close();
  await running?.stop();
});

interface Envelope {
  flags: number;
  payload: Buffer;
}

function envelope(flags: number, payload: Uint8Array): Buffer {
  const bytes = Buffer.alloc(5 + payload.length);
  bytes[0] = flags;
  bytes.writeUInt32BE(payload.length, 1);
  bytes.set(payload, 5);
  return bytes;
}

const binaryRequest = (request: { streamName: string; groupId: string; itemId?: string }) =>
  envelope(0, toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, request)));
const jsonRequest = (request: object) => envelope(0, Buffer.from(JSON.stringify(request)));
const decode = (frame: Envelope): SubscribeResponse => fromBinary(SubscribeResponseSchema, frame.payload);

/** One HTTP/2 request whose response is read frame by frame. */
class RawStream {
  headers: http2.IncomingHttpHeaders | undefined;
  /** The response headers carried END_STREAM: a trailers-only response. */
  headersEnded = false;
  trailers: http2.IncomingHttpHeaders | undefined;
  closed = false;
  private data = Buffer.alloc(0);
  private readonly stream: http2.ClientHttp2Stream;

  constructor(headers: Record<string, string>, body: Buffer) {
    this.stream = session.request({ ":method": "POST", ":path": PATH, ...headers });
    this.stream.on("response", (responseHeaders, flags) => {
      this.headers = responseHeaders;
      this.headersEnded = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    });
    this.stream.on("data", (chunk: Buffer) => (this.data = Buffer.concat([this.data, chunk])));
    this.stream.on("trailers", (trailers) => (this.trailers = trailers));
    this.stream.on("error", () => undefined);
    this.stream.on("close", () => (this.closed = true));
    this.stream.end(body);
  }

  /** Every complete envelope so far. */
  get frames(): Envelope[] {
    const frames: Envelope[] = [];
    let offset = 0;
    while (offset + 5 <= this.data.length) {
      const length = this.data.readUInt32BE(offset + 1);
      if (offset + 5 + length > this.data.length) break;
      frames.push({ flags: this.data[offset], payload: this.data.subarray(offset + 5, offset + 5 + length) });
      offset += 5 + length;
    }
    return frames;
  }

  /** Bytes left after the last complete envelope. */
  get rest(): number {
    return this.data.length - this.frames.reduce((sum, frame) => sum + 5 + frame.payload.length, 0);
  }

  async framesAtLeast(count: number): Promise<Envelope[]> {
    await waitFor(() => this.frames.length >= count, `${count} frames`);
    return this.frames;
  }

  async ended(): Promise<void> {
    await waitFor(() => this.closed, "the stream to close");
  }

  close(): void {
    this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }
}

async function expectReleased(): Promise<void> {
  await waitFor(() => running.server.stats().subscriptions === 0, "every subscription to be released");
  expect([running.server.stats().groupFeeds, adapter.watcherCount]).toEqual([0, 0]);
}

describe("gRPC over HTTP/2", () => {
  it("sends headers, then length-prefixed messages, and keeps the stream open", async () => {
    const call = new RawStream({ "content-type": "application/grpc", te: "trailers" }, binaryRequest({ streamName: "s", groupId: "g" }));
    try {
      const [first] = await call.framesAtLeast(1);
      expect(call.headers).toMatchObject({ ":status": 200, "content-type": "application/grpc+proto" });
      expect(call.headersEnded).toBe(false);
      expect(first.flags).toBe(0);
      expect(decode(first).message).toMatchObject({ case: "snapshot", value: { offset: 1n } });

      await running.client().set({ streamName: "s", groupId: "g", itemId: "b", data: json("x") });
      const frames = await call.framesAtLeast(2);
      expect(frames.length).toBe(2);
      expect(call.rest).toBe(0);
      expect(decode(frames[1]).message).toMatchObject({ case: "change", value: { itemId: "b", offset: 2n } });
      expect([call.trailers, call.closed]).toEqual([undefined, false]);
    } finally {
      call.close();
    }
    await expectReleased();
  });

  it("answers an error before the first message as a trailers-only response, the message percent-encoded", async () => {
    const call = new RawStream({ "content-type": "application/grpc" }, binaryRequest({ streamName: "s", groupId: "" }));
    await call.ended();
    expect(call.headersEnded).toBe(true);
    expect(call.headers).toMatchObject({
      ":status": 200,
      "content-type": "application/grpc+proto",
      "grpc-status": "3",
      "grpc-message": "group_id%20must%20not%20be%20empty",
    });
    expect([call.frames, call.trailers]).toEqual([[], undefined]);
    await expectReleased();
  });

  it("honours grpc-timeout: the stream ends with DEADLINE_EXCEEDED in the trailers and is released", async () => {
    const call = new RawStream({ "content-type": "application/grpc", "grpc-timeout": "200m" }, binaryRequest({ streamName: "s", groupId: "g" }));
    await call.ended();
    expect(decode(call.frames[0]).message.case).toBe("snapshot");
    expect(call.trailers).toMatchObject({ "grpc-status": "4", "grpc-message": "the%20operation%20timed%20out" });
    await expectReleased();
  });

  it("reads a gzip-compressed request, and refuses an unknown encoding with UNIMPLEMENTED", async () => {
    const compressed = new RawStream(
      { "content-type": "application/grpc", "grpc-encoding": "gzip" },
      envelope(1, gzipSync(toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { streamName: "s", groupId: "g" })))),
    );
    try {
      expect(decode((await compressed.framesAtLeast(1))[0]).message.case).toBe("snapshot");
    } finally {
      compressed.close();
    }
    const unknown = new RawStream({ "content-type": "application/grpc", "grpc-encoding": "snappy" }, binaryRequest({ streamName: "s", groupId: "g" }));
    await unknown.ended();
    expect(unknown.headers).toMatchObject({ "grpc-status": "12", "grpc-accept-encoding": "gzip,br" });
    expect(decodeURIComponent(String(unknown.headers?.["grpc-message"]))).toBe('unknown compression "snappy": supported encodings are gzip,br');
    await expectReleased();
  });

  it("answers a request over the size limit with RESOURCE_EXHAUSTED and does not wait for the rest of it", async () => {
    const header = Buffer.from([0, 0, 0, 0, 0]);
    header.writeUInt32BE(2 * 1024 * 1024, 1);
    const call = new RawStream({ "content-type": "application/grpc" }, Buffer.concat([header, Buffer.alloc(256 * 1024)]));
    await call.ended();
    expect(call.headers).toMatchObject({ "grpc-status": "8" });
    expect(decodeURIComponent(String(call.headers?.["grpc-message"]))).toMatch(/larger than configured readMaxBytes 1048576$/);
  });
});

describe("gRPC-Web and Connect framing", () => {
  it("ends gRPC-Web with a trailer frame (flag 0x80)", async () => {
    const call = new RawStream({ "content-type": "application/grpc-web+proto", "grpc-timeout": "150m" }, binaryRequest({ streamName: "s", groupId: "g" }));
    await call.ended();
    expect(call.headers?.["content-type"]).toBe("application/grpc-web+proto");
    const frames = call.frames;
    expect(frames.map((frame) => frame.flags)).toEqual([0, 0x80]);
    expect(frames[1].payload.toString()).toBe("grpc-message: the%20operation%20timed%20out\r\ngrpc-status: 4\r\n");
    expect(call.trailers ?? {}).not.toHaveProperty("grpc-status");
  });

  it("ends Connect with an end-stream frame (flag 0x02) holding the error as JSON", async () => {
    const call = new RawStream({ "content-type": "application/connect+json" }, jsonRequest({ stream_name: "s", group_id: "" }));
    await call.ended();
    expect(call.headers).toMatchObject({ ":status": 200, "content-type": "application/connect+json" });
    const frames = call.frames;
    expect(frames.map((frame) => frame.flags)).toEqual([2]);
    expect(JSON.parse(frames[0].payload.toString())).toEqual({ error: { code: "invalid_argument", message: "group_id must not be empty" } });

    const timedOut = new RawStream({ "content-type": "application/connect+proto", "connect-timeout-ms": "150" }, binaryRequest({ streamName: "s", groupId: "g" }));
    await timedOut.ended();
    expect(timedOut.frames.map((frame) => frame.flags)).toEqual([0, 2]);
    expect(JSON.parse(timedOut.frames[1].payload.toString())).toEqual({ error: { code: "deadline_exceeded", message: "the operation timed out" } });
    await expectReleased();
  });

  it("writes Connect JSON messages in the proto3 JSON mapping (camelCase names, 64-bit integers as strings)", async () => {
    const call = new RawStream({ "content-type": "application/connect+json" }, jsonRequest({ streamName: "s", groupId: "g", itemId: "a" }));
    try {
      const [snapshot] = await call.framesAtLeast(1);
      expect(JSON.parse(snapshot.payload.toString())).toEqual({
        snapshot: { items: [{ itemId: "a", data: { n: 1 }, revision: "1", updatedAtMs: expect.stringMatching(/^\d+$/) }], offset: expect.stringMatching(/^\d+$/) },
      });
      await running.client().send({ streamName: "s", groupId: "g", itemId: "a", type: "ping", data: json([1, null]) });
      const event = JSON.parse((await call.framesAtLeast(2))[1].payload.toString());
      expect(event).toEqual({ event: { type: "ping", itemId: "a", data: [1, null], offset: expect.any(String), timestampMs: expect.any(String) } });
    } finally {
      call.close();
    }
    await expectReleased();
  });

  it("gives every protocol with the same serialization the very same message bytes", async () => {
    const binary = ["application/grpc", "application/grpc-web+proto", "application/connect+proto"].map(
      (contentType) => new RawStream({ "content-type": contentType }, binaryRequest({ streamName: "s", groupId: "shared" })),
    );
    const text = ["application/grpc+json", "application/grpc-web+json", "application/connect+json"].map(
      (contentType) => new RawStream({ "content-type": contentType }, jsonRequest({ streamName: "s", groupId: "shared" })),
    );
    const calls = [...binary, ...text];
    try {
      await Promise.all(calls.map((call) => call.framesAtLeast(1)));
      await running.client().set({ streamName: "s", groupId: "shared", itemId: "x", data: json({ deep: [1, { b: true }] }) });
      const changes = await Promise.all(calls.map(async (call) => (await call.framesAtLeast(2))[1].payload));
      for (const payload of changes.slice(1, 3)) expect(payload.equals(changes[0])).toBe(true);
      for (const payload of changes.slice(4)) expect(payload.equals(changes[3])).toBe(true);
      expect(JSON.parse(changes[3].toString())).toMatchObject({ change: { type: "CHANGE_TYPE_CREATE", itemId: "x", data: { deep: [1, { b: true }] } } });
    } finally {
      for (const call of calls) call.close();
    }
    await expectReleased();
  });
});

describe("requests the streaming path leaves to Connect", () => {
  async function post(contentType: string, body: Uint8Array): Promise<number> {
    const response = await fetch(`${running.url}${PATH}`, { method: "POST", headers: { "content-type": contentType }, body });
    await response.body?.cancel();
    return response.status;
  }

  it("answers an unsupported content type with 415, over HTTP/1.1 and HTTP/2", async () => {
    expect(await post("application/xml", binaryRequest({ streamName: "s", groupId: "g" }))).toBe(415);
    expect(await post("application/grpc-web-text", Buffer.from(binaryRequest({ streamName: "s", groupId: "g" }).toString("base64")))).toBe(415);
    // Connect's unary content type is not one a streaming method takes.
    expect(await post("application/json", Buffer.from("{}"))).toBe(415);
    const call = new RawStream({ "content-type": "text/plain" }, Buffer.from("hello"));
    await call.ended();
    expect(call.headers?.[":status"]).toBe(415);
    expect(running.server.stats().subscriptions).toBe(0);
  });
});
