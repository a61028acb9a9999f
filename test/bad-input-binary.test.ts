import http from "node:http";
import http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { createClient, type Client } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { StreamService } from "../gen/iii/stream/v1/stream_pb.js";
import { TriggerService } from "../gen/iii/stream/v1/triggers_pb.js";
import { startServer, transportFor, type RunningServer } from "./support/server.js";

/**
 * Requests whose bodies cannot be decoded, sent raw (no generated client would send
 * them) over every protocol: each must be INVALID_ARGUMENT, as the same mistake in
 * JSON is, and change nothing.
 */

let running: RunningServer;
let client: Client<typeof StreamService>;
let triggers: Client<typeof TriggerService>;

beforeAll(async () => {
  running = await startServer();
  client = running.client("connect-json-h1");
  triggers = createClient(TriggerService, transportFor(running.url, "connect-json-h1"));
});

afterEach(async () => {
  // Nothing any of these requests carried was written or registered.
  expect((await client.listAll({})).streams).toEqual([]);
  expect((await client.get({ streamName: "s", groupId: "g", itemId: "i" })).item).toBeUndefined();
  expect((await triggers.listFunctions({})).functions).toEqual([]);
});

afterAll(async () => {
  await running?.stop();
});

function varint(n: number): Buffer {
  const bytes: number[] = [];
  while (n > 0x7f) {
    bytes.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  bytes.push(n);
  return Buffer.from(bytes);
}

/** A length-delimited field. */
function field(number: number, payload: Buffer): Buffer {
  return Buffer.concat([varint((number << 3) | 2), varint(payload.length), payload]);
}

const str = (number: number, text: string) => field(number, Buffer.from(text));

/** A google.protobuf.Value holding lists `depth` deep: two messages per level. */
function deepValue(depth: number): Buffer {
  let value: Buffer = Buffer.alloc(0);
  for (let i = 0; i < depth; i++) value = field(6, field(1, value));
  return value;
}

/** Bytes that are no protobuf at all: a tag with wire type 7, then a varint that never ends. */
const GARBAGE = Buffer.from("0fffffffffffffffffffffff", "hex");
/** "\xc3\x28": a two-byte sequence cut short. */
const BAD_UTF8 = Buffer.from([0xc3, 0x28]);

interface Case {
  method: string;
  body: Buffer;
}

const UNARY: Record<string, Case> = {
  "random bytes": { method: "iii.stream.v1.StreamService/Set", body: GARBAGE },
  "invalid UTF-8 in a name": {
    method: "iii.stream.v1.StreamService/Set",
    body: Buffer.concat([field(1, BAD_UTF8), str(2, "g"), str(3, "i"), field(4, field(3, Buffer.from("x")))]),
  },
  "a value nested deeper than the decoder allows": {
    method: "iii.stream.v1.StreamService/Set",
    body: Buffer.concat([str(1, "s"), str(2, "g"), str(3, "i"), field(4, deepValue(60))]),
  },
  "invalid UTF-8 in a function URL": {
    method: "iii.stream.v1.TriggerService/RegisterFunction",
    body: Buffer.concat([str(1, "f"), field(2, Buffer.concat([Buffer.from("http://127.0.0.1:9/"), BAD_UTF8]))]),
  },
  "random bytes to a trigger registration": { method: "iii.stream.v1.TriggerService/RegisterTrigger", body: GARBAGE },
};

const SUBSCRIBE: Record<string, Case> = {
  "random bytes": { method: "iii.stream.v1.StreamService/Subscribe", body: GARBAGE },
  "invalid UTF-8 in a name": { method: "iii.stream.v1.StreamService/Subscribe", body: Buffer.concat([field(1, BAD_UTF8), str(2, "g")]) },
};

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  trailers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function envelope(flags: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header[0] = flags;
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

function post1(path: string, headers: Record<string, string>, body: Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, running.url);
    const req = http.request(url, { method: "POST", agent: false, headers: { ...headers, "content-length": body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, trailers: res.trailers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

function post2(path: string, headers: Record<string, string>, body: Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(running.url);
    session.on("error", reject);
    const stream = session.request({ ":method": "POST", ":path": `/${path}`, ...headers });
    let responseHeaders: RawResponse["headers"] = {};
    let trailers: RawResponse["trailers"] = {};
    const chunks: Buffer[] = [];
    stream.on("response", (h) => (responseHeaders = h));
    stream.on("trailers", (t) => (trailers = t));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => {
      session.close();
      resolve({ status: Number(responseHeaders[":status"]), headers: responseHeaders, trailers, body: Buffer.concat(chunks) });
    });
    stream.on("error", reject);
    stream.end(body);
  });
}

/** The frames of an enveloped body: [flags, payload]. */
function frames(body: Buffer): Array<[number, Buffer]> {
  const out: Array<[number, Buffer]> = [];
  for (let at = 0; at + 5 <= body.length; ) {
    const length = body.readUInt32BE(at + 1);
    out.push([body[at], body.subarray(at + 5, at + 5 + length)]);
    at += 5 + length;
  }
  return out;
}

type Protocol = "connect-proto" | "connect-json" | "grpc" | "grpc-web";

/** The status code a response reports, as the protocol reports it, plus its message. */
function statusOf(protocol: Protocol, streaming: boolean, response: RawResponse): { code: string; message: string } {
  if (protocol === "connect-proto" || protocol === "connect-json") {
    if (!streaming) {
      const error = JSON.parse(response.body.toString()) as { code: string; message: string };
      return { code: `${error.code} (HTTP ${response.status})`, message: error.message };
    }
    const end = frames(response.body).find(([flags]) => flags === 2);
    const error = (JSON.parse(end![1].toString()) as { error: { code: string; message: string } }).error;
    return { code: error.code, message: error.message };
  }
  let status = response.trailers["grpc-status"] ?? response.headers["grpc-status"];
  let message = response.trailers["grpc-message"] ?? response.headers["grpc-message"];
  if (status === undefined && protocol === "grpc-web") {
    const trailer = frames(response.body).find(([flags]) => flags === 0x80);
    const lines = trailer![1].toString().split("\r\n");
    status = lines.find((l) => l.startsWith("grpc-status:"))?.split(":")[1].trim();
    message = lines.find((l) => l.startsWith("grpc-message:"))?.slice("grpc-message:".length).trim();
  }
  return { code: `grpc-status ${String(status)}`, message: decodeURIComponent(String(message)) };
}

const PROTOCOLS: Array<{ name: string; protocol: Protocol; http: 1 | 2 }> = [
  { name: "Connect binary, HTTP/1.1", protocol: "connect-proto", http: 1 },
  { name: "Connect binary, HTTP/2", protocol: "connect-proto", http: 2 },
  { name: "gRPC", protocol: "grpc", http: 2 },
  { name: "gRPC-Web, HTTP/1.1", protocol: "grpc-web", http: 1 },
  { name: "gRPC-Web, HTTP/2", protocol: "grpc-web", http: 2 },
];

function send(protocol: Protocol, httpVersion: 1 | 2, streaming: boolean, { method, body }: Case, extraHeaders: Record<string, string> = {}) {
  let contentType: string;
  let payload = body;
  switch (protocol) {
    case "connect-proto":
      contentType = streaming ? "application/connect+proto" : "application/proto";
      if (streaming) payload = envelope(extraHeaders["connect-content-encoding"] ? 1 : 0, body);
      break;
    case "connect-json":
      contentType = streaming ? "application/connect+json" : "application/json";
      if (streaming) payload = envelope(0, body);
      break;
    case "grpc":
      contentType = "application/grpc";
      payload = envelope(extraHeaders["grpc-encoding"] ? 1 : 0, body);
      break;
    case "grpc-web":
      contentType = "application/grpc-web+proto";
      payload = envelope(extraHeaders["grpc-encoding"] ? 1 : 0, body);
      break;
  }
  const headers = { "content-type": contentType, "connect-protocol-version": "1", te: "trailers", ...extraHeaders };
  if (httpVersion === 1) delete (headers as Record<string, string>).te;
  return (httpVersion === 1 ? post1 : post2)(method, headers, payload);
}

const INVALID_ARGUMENT = (protocol: Protocol, streaming: boolean) =>
  protocol.startsWith("connect") ? (streaming ? "invalid_argument" : "invalid_argument (HTTP 400)") : "grpc-status 3";

describe.each(PROTOCOLS)("$name", ({ protocol, http: httpVersion }) => {
  it.each(Object.entries(UNARY))("unary: %s is INVALID_ARGUMENT", async (_what, call) => {
    const status = statusOf(protocol, false, await send(protocol, httpVersion, false, call));
    expect(status.code, status.message).toBe(INVALID_ARGUMENT(protocol, false));
  });

  it.each(Object.entries(SUBSCRIBE))("Subscribe: %s is INVALID_ARGUMENT", async (_what, call) => {
    const status = statusOf(protocol, true, await send(protocol, httpVersion, true, call));
    expect(status.code, status.message).toBe(INVALID_ARGUMENT(protocol, true));
  });

  it("gzip that inflates to garbage is INVALID_ARGUMENT", async () => {
    const call = { method: "iii.stream.v1.StreamService/Set", body: gzipSync(GARBAGE) };
    const header = protocol === "connect-proto" ? "content-encoding" : "grpc-encoding";
    const status = statusOf(protocol, false, await send(protocol, httpVersion, false, call, { [header]: "gzip" }));
    expect(status.code, status.message).toBe(INVALID_ARGUMENT(protocol, false));
  });
});

describe("the same mistakes in JSON (unchanged: INVALID_ARGUMENT already)", () => {
  it.each([1, 2] as const)("HTTP/%s", async (httpVersion) => {
    for (const body of [GARBAGE, Buffer.concat([Buffer.from('{"streamName":"'), BAD_UTF8, Buffer.from('","groupId":"g","itemId":"i","data":1}')])]) {
      const unary = statusOf("connect-json", false, await send("connect-json", httpVersion, false, { method: "iii.stream.v1.StreamService/Set", body }));
      expect(unary.code, unary.message).toBe("invalid_argument (HTTP 400)");
      const stream = statusOf("connect-json", true, await send("connect-json", httpVersion, true, { method: "iii.stream.v1.StreamService/Subscribe", body }));
      expect(stream.code, stream.message).toBe("invalid_argument");
    }
  });
});

describe("well-formed binary requests still work", () => {
  it.each(PROTOCOLS)("$name", async ({ protocol, http: httpVersion }) => {
    const body = Buffer.concat([str(1, "ok"), str(2, "g"), str(3, "i"), field(4, field(3, Buffer.from("x")))]);
    const response = await send(protocol, httpVersion, false, { method: "iii.stream.v1.StreamService/Set", body });
    expect(response.status).toBe(200);
    if (protocol !== "connect-proto") expect(statusOf(protocol, false, response).code).toBe("grpc-status 0");
    expect((await client.get({ streamName: "ok", groupId: "g", itemId: "i" })).item?.data?.kind).toEqual({ case: "stringValue", value: "x" });
    await client.delete({ streamName: "ok", groupId: "g", itemId: "i" });
  });
});
