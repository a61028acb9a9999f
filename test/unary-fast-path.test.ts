import http from "node:http";
import http2 from "node:http2";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { create, fromJson, toBinary, toJson, type DescMessage, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  GetRequestSchema,
  ListAllRequestSchema,
  ListGroupsRequestSchema,
  ListRequestSchema,
  SendRequestSchema,
  SetRequestSchema,
  UpdateRequestSchema,
} from "../gen/iii/stream/v1/stream_pb.js";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join as joinPath } from "node:path";
import { ConfigError } from "../src/cli/config.js";
import { configToOptions } from "../src/cli/config-to-options.js";
import { RecordingLog } from "../src/index.js";
import { startServer, type RunningServer } from "./support/server.js";

/*
 * The unary fast path against the plain connect-node path: one corpus of calls (valid,
 * invalid and odd, on every protocol and HTTP version, compressed, oversized, with
 * deadlines and without keys) is sent to a server of each kind, configured alike, in
 * the same order; every answer must be the same: status, headers (but Date), body bytes
 * and trailers. The access log and the call counts must come out the same too.
 *
 * Both servers run in this process with Date.now held still, so that the timestamps
 * items carry are the same on both and answers compare byte for byte.
 */

const KEY = "fast-path-test-key-0123456789abcdef";
const LIMIT = 64 * 1024;
const SERVICE = "/iii.stream.v1.StreamService";

type Via = "h1" | "h2";

interface Request {
  via: Via;
  method?: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

interface Answer {
  status: number;
  headers: Record<string, unknown>;
  body: string;
  trailers: Record<string, unknown>;
  reset?: number;
}

interface Protocol {
  name: string;
  contentType: string;
  json: boolean;
  enveloped: boolean;
  via: Via[];
  encodingHeader: string;
  acceptEncodingHeader: string;
  timeoutHeader: string;
}

const PROTOCOLS: Protocol[] = [
  { name: "connect-proto", contentType: "application/proto", json: false, enveloped: false, via: ["h1", "h2"], encodingHeader: "content-encoding", acceptEncodingHeader: "accept-encoding", timeoutHeader: "connect-timeout-ms" },
  { name: "connect-json", contentType: "application/json", json: true, enveloped: false, via: ["h1", "h2"], encodingHeader: "content-encoding", acceptEncodingHeader: "accept-encoding", timeoutHeader: "connect-timeout-ms" },
  { name: "grpc", contentType: "application/grpc", json: false, enveloped: true, via: ["h2"], encodingHeader: "grpc-encoding", acceptEncodingHeader: "grpc-accept-encoding", timeoutHeader: "grpc-timeout" },
  { name: "grpc-proto", contentType: "application/grpc+proto", json: false, enveloped: true, via: ["h2"], encodingHeader: "grpc-encoding", acceptEncodingHeader: "grpc-accept-encoding", timeoutHeader: "grpc-timeout" },
  { name: "grpc-json", contentType: "application/grpc+json", json: true, enveloped: true, via: ["h2"], encodingHeader: "grpc-encoding", acceptEncodingHeader: "grpc-accept-encoding", timeoutHeader: "grpc-timeout" },
  { name: "grpc-web", contentType: "application/grpc-web+proto", json: false, enveloped: true, via: ["h1", "h2"], encodingHeader: "grpc-encoding", acceptEncodingHeader: "grpc-accept-encoding", timeoutHeader: "grpc-timeout" },
  { name: "grpc-web-bare", contentType: "application/grpc-web", json: false, enveloped: true, via: ["h1"], encodingHeader: "grpc-encoding", acceptEncodingHeader: "grpc-accept-encoding", timeoutHeader: "grpc-timeout" },
  { name: "grpc-web-json", contentType: "application/grpc-web+json", json: true, enveloped: true, via: ["h1", "h2"], encodingHeader: "grpc-encoding", acceptEncodingHeader: "grpc-accept-encoding", timeoutHeader: "grpc-timeout" },
];

function frame(flags: number, payload: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + payload.byteLength);
  out[0] = flags;
  out.writeUInt32BE(payload.byteLength, 1);
  out.set(payload, 5);
  return out;
}

function encode<S extends DescMessage>(protocol: Protocol, schema: S, init: MessageInitShape<S>): Buffer {
  const message = create(schema, init);
  return Buffer.from(protocol.json ? new TextEncoder().encode(JSON.stringify(toJson(schema, message))) : toBinary(schema, message));
}

function body(protocol: Protocol, payload: Buffer): Buffer {
  return protocol.enveloped ? frame(0, payload) : payload;
}

/** Every call of the corpus for one protocol over one HTTP version; names are unique to it so both servers see the same state. */
function corpus(protocol: Protocol, via: Via): Array<[string, Request]> {
  const stream = `s-${protocol.name}-${via}`;
  const base = { "content-type": protocol.contentType, authorization: `Bearer ${KEY}` };
  const call = (method: string, payload: Buffer, headers: Record<string, string> = {}): Request => ({
    via,
    path: `${SERVICE}/${method}`,
    headers: { ...base, ...headers },
    body: body(protocol, payload),
  });
  const set = (item: string, data: JsonValue, extra: object = {}) =>
    encode(protocol, SetRequestSchema, { streamName: stream, groupId: "g", itemId: item, data: fromJson(ValueSchema, data), ...extra });
  const big = { text: "x".repeat(3000) };
  const cases: Array<[string, Request]> = [
    ["Set", call("Set", set("a", { n: 1 }))],
    ["Set again", call("Set", set("a", { n: 2 }))],
    ["Set with a stale if_revision", call("Set", set("a", { n: 3 }, { ifRevision: 7n }))],
    ["Set with an empty item id", call("Set", set("", { n: 1 }))],
    ["Set without data", call("Set", encode(protocol, SetRequestSchema, { streamName: stream, groupId: "g", itemId: "nodata" }))],
    ["Get", call("Get", encode(protocol, GetRequestSchema, { streamName: stream, groupId: "g", itemId: "a" }))],
    ["Get of a missing item", call("Get", encode(protocol, GetRequestSchema, { streamName: stream, groupId: "g", itemId: "zz" }))],
    ["Update", call("Update", encode(protocol, UpdateRequestSchema, { streamName: stream, groupId: "g", itemId: "a", ops: [{ op: { case: "increment", value: { path: ["n"], by: 5n } } }] }))],
    ["Update with a failing op", call("Update", encode(protocol, UpdateRequestSchema, { streamName: stream, groupId: "g", itemId: "a", ops: [{ op: { case: "append", value: { path: ["n"], value: { kind: { case: "numberValue", value: 1 } } } } }] }))],
    ["Send", call("Send", encode(protocol, SendRequestSchema, { streamName: stream, groupId: "g", type: "ping", data: { kind: { case: "stringValue", value: "hi" } } }))],
    ["Send without a type", call("Send", encode(protocol, SendRequestSchema, { streamName: stream, groupId: "g" }))],
    ["List", call("List", encode(protocol, ListRequestSchema, { streamName: stream, groupId: "g" }))],
    ["List with a bad page token", call("List", encode(protocol, ListRequestSchema, { streamName: stream, groupId: "g", pageToken: "nope" }))],
    ["ListGroups", call("ListGroups", encode(protocol, ListGroupsRequestSchema, { streamName: stream }))],
    ["ListAll", call("ListAll", encode(protocol, ListAllRequestSchema, { pageSize: 3 }))],
    ["Set of a large value", call("Set", set("big", big))],
    ["Get of a large value, response compression accepted (gzip)", call("Get", encode(protocol, GetRequestSchema, { streamName: stream, groupId: "g", itemId: "big" }), { [protocol.acceptEncodingHeader]: "gzip" })],
    ["Get of a large value, response compression accepted (br, then gzip)", call("Get", encode(protocol, GetRequestSchema, { streamName: stream, groupId: "g", itemId: "big" }), { [protocol.acceptEncodingHeader]: "br, gzip" })],
    ["Get of a large value, an unknown response compression", call("Get", encode(protocol, GetRequestSchema, { streamName: stream, groupId: "g", itemId: "big" }), { [protocol.acceptEncodingHeader]: "zstd" })],
    ["an error, response compression accepted", call("Set", set("", big), { [protocol.acceptEncodingHeader]: "gzip" })],
    ["a gzip request", compressed(call("Set", set("gz", { n: 1 })), protocol, "gzip")],
    ["a br request", compressed(call("Set", set("br", { n: 1 })), protocol, "br")],
    ["an identity request", call("Set", set("id", { n: 1 }), { [protocol.encodingHeader]: "identity" })],
    ["an unknown request compression", call("Set", set("zz", { n: 1 }), { [protocol.encodingHeader]: "zstd" })],
    ["a gzip header on an uncompressed body", call("Set", set("gz2", { n: 1 }), { [protocol.encodingHeader]: "gzip" })],
    ["a valid timeout", call("Set", set("t", { n: 1 }), { [protocol.timeoutHeader]: protocol.timeoutHeader === "grpc-timeout" ? "5S" : "5000" })],
    ["an invalid timeout", call("Set", set("t", { n: 1 }), { [protocol.timeoutHeader]: "soon" })],
    ["no API key", { ...call("Set", set("k", { n: 1 })), headers: { "content-type": protocol.contentType } }],
    ["a wrong API key", call("Set", set("k", { n: 1 }), { authorization: "Bearer wrong-key-wrong-key-wrong-key-0000" })],
    ["random bytes", call("Set", Buffer.from("a9f3e1b2c4d5e6f70811223344556677889900aabbccddeeff", "hex"))],
    ["an empty body", { ...call("Set", Buffer.alloc(0)), body: Buffer.alloc(0) }],
    ["an empty message", call("Set", Buffer.alloc(0))],
    ["bad JSON", call("Set", Buffer.from('{"stream_name": '))],
    ["an unknown JSON field", call("Set", Buffer.from(JSON.stringify({ streamName: stream, groupId: "g", itemId: "u", data: 1, ifRevison: 2 })))],
    ["an unknown binary field", call("Set", Buffer.concat([toBinarySet(stream), Buffer.from([0xf8, 0x06, 0x01])]))],
    ["invalid UTF-8 in JSON", call("Set", Buffer.concat([Buffer.from('{"streamName":"'), Buffer.from([0xff, 0xfe]), Buffer.from('","groupId":"g","itemId":"i","data":1}')]))],
    ["a body over the limit", call("Set", set("huge", { text: "y".repeat(LIMIT + 100) }))],
    ["a value over the limit, body within it", call("Set", set("near", { text: "y".repeat(LIMIT - 200) }))],
    ["a charset in the content type", call("Set", set("cs", { n: 1 }), { "content-type": `${protocol.contentType}; charset=utf-8` })],
    ["no content type", { ...call("Set", set("ct", { n: 1 })), headers: { authorization: `Bearer ${KEY}` } }],
    ["a content type the server does not speak", call("Set", set("ct", { n: 1 }), { "content-type": "text/plain" })],
    ["GET", { ...call("Get", encode(protocol, GetRequestSchema, { streamName: stream, groupId: "g", itemId: "a" })), method: "GET", body: Buffer.alloc(0) }],
    ["an unknown method", call("Nope", set("x", { n: 1 }))],
    ["a query string", { ...call("Get", encode(protocol, GetRequestSchema, { streamName: stream, groupId: "g", itemId: "a" })), path: `${SERVICE}/Get?x=1` }],
    ["an allowed Origin", call("Get", encode(protocol, GetRequestSchema, { streamName: stream, groupId: "g", itemId: "a" }), { origin: "https://app.example" })],
    ["a foreign Origin", call("Get", encode(protocol, GetRequestSchema, { streamName: stream, groupId: "g", itemId: "a" }), { origin: "https://evil.example" })],
  ];
  if (protocol.enveloped) {
    const payload = set("env", { n: 1 });
    cases.push(
      ["two messages", { ...call("Set", payload), body: Buffer.concat([frame(0, payload), frame(0, payload)]) }],
      ["a truncated envelope", { ...call("Set", payload), body: frame(0, payload).subarray(0, 8) }],
      ["an envelope announcing more than the limit", { ...call("Set", payload), body: Buffer.concat([Buffer.from([0, 0, 0x10, 0, 0]), payload]) }],
      ["a compressed flag without an encoding", { ...call("Set", payload), body: frame(1, payload) }],
      ["a compressed envelope", { ...call("Set", payload), headers: { ...base, [protocol.encodingHeader]: "gzip" }, body: frame(1, gzipSync(payload)) }],
      ["a compressed envelope of garbage", { ...call("Set", payload), headers: { ...base, [protocol.encodingHeader]: "gzip" }, body: frame(1, Buffer.from("not gzip")) }],
      ["a trailer flag", { ...call("Set", payload), body: frame(0x80, payload) }],
    );
  } else {
    cases.push(
      ["a gzip body of garbage", call("Set", Buffer.from("not gzip at all"), { "content-encoding": "gzip" })],
      ["a short Content-Length", { ...call("Set", set("cl", { n: 1 })), headers: { ...base, "content-length": "3" } }],
      ["a Content-Length over the limit", { ...call("Set", set("cl", { n: 1 })), headers: { ...base, "content-length": String(LIMIT + 1) } }],
      ["a stream content type on a unary method", call("Set", set("st", { n: 1 }), { "content-type": protocol.json ? "application/connect+json" : "application/connect+proto" })],
    );
  }
  return cases;

  function toBinarySet(name: string): Buffer {
    return Buffer.from(toBinary(SetRequestSchema, create(SetRequestSchema, { streamName: name, groupId: "g", itemId: "unk", data: { kind: { case: "numberValue", value: 1 } } })));
  }
}

function compressed(request: Request, protocol: Protocol, encoding: "gzip" | "br"): Request {
  const squeeze = (bytes: Buffer) => (encoding === "gzip" ? gzipSync(bytes) : brotliCompressSync(bytes));
  const payload = protocol.enveloped ? request.body.subarray(5) : request.body;
  return {
    ...request,
    headers: { ...request.headers, [protocol.encodingHeader]: encoding },
    body: protocol.enveloped ? frame(1, squeeze(payload)) : squeeze(payload),
  };
}

/** One endpoint of each server: an HTTP/2 session, and fresh HTTP/1.1 connections. */
class Caller {
  private session: http2.ClientHttp2Session | undefined;

  constructor(private readonly url: string) {}

  send(request: Request): Promise<Answer> {
    return request.via === "h2" ? this.h2(request) : this.h1(request);
  }

  close(): void {
    this.session?.close();
  }

  private h2(request: Request): Promise<Answer> {
    if (this.session === undefined || this.session.closed || this.session.destroyed) {
      this.session = http2.connect(this.url);
      this.session.on("error", () => undefined);
    }
    const stream = this.session.request({ ":method": request.method ?? "POST", ":path": request.path, ...request.headers });
    return new Promise((resolve) => {
      const answer: Answer = { status: 0, headers: {}, body: "", trailers: {} };
      const chunks: Buffer[] = [];
      stream.on("response", (headers) => {
        answer.status = Number(headers[":status"]);
        answer.headers = comparable(headers);
      });
      stream.on("trailers", (trailers) => (answer.trailers = comparable(trailers)));
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("error", () => undefined);
      stream.on("close", () => {
        answer.body = Buffer.concat(chunks).toString("base64");
        if (stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) answer.reset = stream.rstCode;
        resolve(answer);
      });
      stream.end(request.body);
    });
  }

  private h1(request: Request): Promise<Answer> {
    const target = new URL(this.url);
    return new Promise((resolve) => {
      const req = http.request(
        { host: target.hostname, port: target.port, path: request.path, method: request.method ?? "POST", headers: request.headers, agent: false },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, headers: comparable(res.headers), body: Buffer.concat(chunks).toString("base64"), trailers: comparable(res.trailers) }),
          );
          res.on("error", () => resolve({ status: res.statusCode ?? 0, headers: comparable(res.headers), body: "(reset)", trailers: {} }));
        },
      );
      req.on("error", (error) => resolve({ status: -1, headers: {}, body: String(error), trailers: {} }));
      req.end(request.body);
    });
  }
}

/** Headers but the ones that differ between two servers by time alone. */
function comparable(headers: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name === "date" || name === ":status") continue;
    out[name] = value;
  }
  return out;
}

describe("the unary fast path answers every call as the plain connect-node path does", () => {
  const logs = { fast: new RecordingLog("debug"), plain: new RecordingLog("debug") };
  let fast: RunningServer;
  let plain: RunningServer;
  let callers: { fast: Caller; plain: Caller };
  const now = Date.now();

  beforeAll(async () => {
    vi.spyOn(Date, "now").mockReturnValue(now);
    const options = { apiKeys: [KEY], maxMessageBytes: LIMIT, allowedOrigins: ["https://app.example"] };
    fast = await startServer({ ...options, log: logs.fast });
    plain = await startServer({ ...options, log: logs.plain, unaryFastPath: false });
    callers = { fast: new Caller(fast.url), plain: new Caller(plain.url) };
  });
  afterAll(async () => {
    callers?.fast.close();
    callers?.plain.close();
    await fast?.stop();
    await plain?.stop();
    vi.restoreAllMocks();
  });

  for (const protocol of PROTOCOLS) {
    for (const via of protocol.via) {
      it(`${protocol.name} over ${via === "h1" ? "HTTP/1.1" : "HTTP/2"}`, async () => {
        for (const [name, request] of corpus(protocol, via)) {
          const [expected, actual] = [await callers.plain.send(request), await callers.fast.send(request)];
          if (process.env.SHOW_ANSWERS) console.log(protocol.name, via, name, actual.status, JSON.stringify(actual.trailers), Buffer.from(actual.body, "base64").toString().slice(0, 100));
          expect({ name, ...actual }).toEqual({ name, ...expected });
        }
      });
    }
  }

  it("gRPC over HTTP/1.1 is left to Connect", async () => {
    const request: Request = { via: "h1", path: `${SERVICE}/Get`, headers: { "content-type": "application/grpc", authorization: `Bearer ${KEY}` }, body: frame(0, Buffer.alloc(0)) };
    expect(await callers.fast.send(request)).toEqual(await callers.plain.send(request));
  });

  it("the access log has the same records, and the same calls are counted", async () => {
    const records = (log: RecordingLog) =>
      log.records.filter((record) => record.message === "call" || record.message === "call failed").map((record) => ({ ...record, fields: { ...record.fields, duration_ms: 0, peer: "" } }));
    expect(records(logs.fast).length).toBeGreaterThan(100);
    expect(records(logs.fast)).toEqual(records(logs.plain));
    const counts = async (running: RunningServer) => {
      const text = await (await fetch(`${running.url}/metrics`)).text();
      return text.split("\n").filter((line) => line.startsWith("iii_stream_rpc_requests_total")).sort();
    };
    const fastCounts = await counts(fast);
    expect(fastCounts.length).toBeGreaterThan(10);
    expect(fastCounts).toEqual(await counts(plain));
  });
});

describe("the unary_fast_path switch", () => {
  it("is on by default, off with unary_fast_path: false or --no-unary-fast-path, and refuses a non-boolean", () => {
    const path = joinPath(mkdtempSync(joinPath(tmpdir(), "fast-path-")), "config.yaml");
    writeFileSync(path, "port: 0\n");
    expect(configToOptions({ config: path, adapter: "memory" }, {}).options.unaryFastPath).toBeUndefined();
    expect(configToOptions({ config: path, adapter: "memory", noUnaryFastPath: true }, {}).options).toMatchObject({ unaryFastPath: false });
    writeFileSync(path, "unary_fast_path: false\n");
    expect(configToOptions({ config: path, adapter: "memory" }, {}).options).toMatchObject({ unaryFastPath: false });
    writeFileSync(path, "unary_fast_path: sometimes\n");
    expect(() => configToOptions({ config: path, adapter: "memory" }, {})).toThrow(ConfigError);
  });
});
