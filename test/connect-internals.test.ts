import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { StreamService, SubscribeRequestSchema, type SubscribeRequest } from "../gen/iii/stream/v1/stream_pb.js";
import * as internals from "../src/rpc/subscribe-stream/connect-internals.js";
import { envelope } from "../src/rpc/subscribe-stream/envelope.js";

/*
 * The connect-es internals Subscribe relies on (src/rpc/subscribe-stream/connect-internals.ts)
 * are not covered by semantic versioning. These tests pin what we use them for: when one
 * fails after an upgrade of @connectrpc/connect, adapt the caller before moving the pin.
 */

const FUNCTIONS = [
  "compressionNegotiate",
  "createMethodSerializationLookup",
  "pipe",
  "transformDecompressEnvelope",
  "transformParseEnvelope",
  "transformSplitEnvelope",
  "createEndStreamSerialization",
  "parseConnectContentType",
  "parseConnectTimeout",
  "parseGrpcContentType",
  "parseGrpcTimeout",
  "setTrailerStatus",
  "parseGrpcWebContentType",
  "trailerSerialize",
  "readAllBytes",
  "transformCompressEnvelope",
  "transformJoinEnvelopes",
  "validateReadWriteMaxBytes",
  "envelopeCompress",
  "errorToJsonBytes",
  "codeToHttpStatus",
  "trailerMux",
] as const;

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

async function* chunks(...parts: Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const part of parts) yield part;
}

async function all<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const value of iterable) out.push(value);
  return out;
}

describe("the connect-es internals Subscribe uses", () => {
  it("are still exported, as functions and constants of the expected kind", () => {
    for (const name of FUNCTIONS) expect(typeof internals[name], name).toBe("function");
    expect(internals.endStreamFlag).toBe(0b10);
    expect(internals.trailerFlag).toBe(0x80);
    expect(internals.grpcStatusOk).toBe("0");
  });

  it("parse the content types of the three protocols as wire-protocol.ts reads them", () => {
    expect(internals.parseConnectContentType("application/connect+proto")).toEqual({ stream: true, binary: true });
    expect(internals.parseConnectContentType("application/connect+json")).toEqual({ stream: true, binary: false });
    expect(internals.parseConnectContentType("application/json")).toEqual({ stream: false, binary: false });
    expect(internals.parseConnectContentType("text/plain")).toBeUndefined();
    expect(internals.parseGrpcContentType("application/grpc")).toEqual({ binary: true });
    expect(internals.parseGrpcContentType("application/grpc+json")).toEqual({ binary: false });
    expect(internals.parseGrpcContentType("application/grpc-web")).toBeUndefined();
    expect(internals.parseGrpcWebContentType("application/grpc-web+proto")).toEqual({ text: false, binary: true });
    expect(internals.parseGrpcWebContentType("application/grpc-web-text")).toEqual({ text: true, binary: true });
  });

  it("parse timeouts into milliseconds, or a ConnectError for a malformed value", () => {
    const max = Number.MAX_SAFE_INTEGER;
    expect(internals.parseConnectTimeout("1500", max)).toEqual({ timeoutMs: 1500 });
    expect(internals.parseConnectTimeout(null, max)).toEqual({});
    expect(internals.parseConnectTimeout("soon", max).error).toBeInstanceOf(ConnectError);
    expect(internals.parseConnectTimeout("soon", max).error?.code).toBe(Code.InvalidArgument);
    expect(internals.parseGrpcTimeout("5S", max)).toEqual({ timeoutMs: 5000 });
    expect(internals.parseGrpcTimeout("250m", max)).toEqual({ timeoutMs: 250 });
    expect(internals.parseGrpcTimeout("1x", max).error?.code).toBe(Code.InvalidArgument);
  });

  it("negotiate request compression: a known encoding, or UNIMPLEMENTED for an unknown one", () => {
    const known = internals.compressionNegotiate([compressionGzip, compressionBrotli], "gzip", null, "connect-accept-encoding");
    expect(known.error).toBeUndefined();
    expect(known.request).toBe(compressionGzip);
    const none = internals.compressionNegotiate([compressionGzip, compressionBrotli], null, null, "grpc-accept-encoding");
    expect([none.request, none.error]).toEqual([null, undefined]);
    const unknown = internals.compressionNegotiate([compressionGzip, compressionBrotli], "zstd", null, "grpc-accept-encoding");
    expect(unknown.error).toBeInstanceOf(ConnectError);
    expect(unknown.error?.code).toBe(Code.Unimplemented);
  });

  it("read one enveloped request, split over chunks and compressed, through pipe and the three transforms", async () => {
    const request = create(SubscribeRequestSchema, { streamName: "s", groupId: "g", itemId: "i", fromOffset: 7n });
    const limits = { readMaxBytes: 1024, writeMaxBytes: 1024 };
    const lookup = internals.createMethodSerializationLookup(StreamService.method.subscribe, undefined, {}, limits);
    const binary: internals.Serialization<SubscribeRequest> = lookup.getI(true);
    const frame = envelope(1, gzipSync(toBinary(SubscribeRequestSchema, request)));
    const read = (parseEnvelope: ReturnType<typeof internals.transformParseEnvelope<SubscribeRequest>>) =>
      all(
        internals.pipe(
          chunks(frame.subarray(0, 3), frame.subarray(3)),
          internals.transformSplitEnvelope(1024),
          internals.transformDecompressEnvelope(compressionGzip, 1024),
          parseEnvelope,
        ),
      );
    const [message] = await read(internals.transformParseEnvelope(binary));
    expect([message.streamName, message.groupId, message.itemId, message.fromOffset]).toEqual(["s", "g", "i", 7n]);

    // Connect's end-stream flag: an envelope carrying it ends the input and is no message.
    const end = envelope(internals.endStreamFlag, new Uint8Array(0));
    const json = lookup.getI(false);
    const text = new TextEncoder().encode(JSON.stringify({ streamName: "s", groupId: "g" }));
    const parsed = await all(
      internals.pipe(
        chunks(envelope(0, text), end),
        internals.transformSplitEnvelope(1024),
        internals.transformDecompressEnvelope(null, 1024),
        internals.transformParseEnvelope(json, internals.endStreamFlag),
      ),
    );
    expect(parsed.map((m) => [m.streamName, m.groupId])).toEqual([["s", "g"]]);

    // The size limit is enforced on the envelope, with RESOURCE_EXHAUSTED.
    const tooBig = internals.pipe(chunks(envelope(0, new Uint8Array(2048))), internals.transformSplitEnvelope(1024));
    await expect(all(tooBig)).rejects.toMatchObject({ code: Code.ResourceExhausted });
  });

  it("serialize the statuses stream-end.ts sends, as Connect does", () => {
    const error = new ConnectError("gone é", Code.NotFound);
    const endStream = internals.createEndStreamSerialization(undefined);
    expect(decode(endStream.serialize({ metadata: new Headers(), error: undefined }))).toBe("{}");
    expect(JSON.parse(decode(endStream.serialize({ metadata: new Headers(), error })))).toEqual({ error: { code: "not_found", message: "gone é" } });

    const status = internals.setTrailerStatus(new Headers({ "grpc-status": internals.grpcStatusOk }), error);
    expect([...status]).toEqual([
      ["grpc-message", "gone%20%C3%A9"],
      ["grpc-status", "5"],
    ]);
    const ok = internals.setTrailerStatus(new Headers({ "grpc-status": internals.grpcStatusOk }), undefined);
    expect([...ok]).toEqual([["grpc-status", "0"]]);
    expect(decode(internals.trailerSerialize(new Headers({ "grpc-status": "0" })))).toBe("grpc-status: 0\r\n");
  });

  it("read, frame and report unary calls as the fast path relies on", async () => {
    const limits = internals.validateReadWriteMaxBytes(100, undefined, undefined);
    expect(limits).toMatchObject({ readMaxBytes: 100, compressMinBytes: 1024 });
    // A body announced too large is refused before a byte is read.
    await expect(internals.readAllBytes(chunks(), 100, "101")).rejects.toMatchObject({ code: Code.ResourceExhausted });
    await expect(internals.readAllBytes(chunks(new Uint8Array(5)), 100, "3")).rejects.toMatchObject({ code: Code.InvalidArgument });
    expect(await internals.readAllBytes(chunks(new Uint8Array(2), new Uint8Array(3)), 100, null)).toHaveLength(5);
    const small = await internals.envelopeCompress({ flags: 0, data: new Uint8Array(10) }, compressionGzip, limits.compressMinBytes);
    expect(small.flags).toBe(0);
    const large = await internals.envelopeCompress({ flags: 0, data: new Uint8Array(2000) }, compressionGzip, limits.compressMinBytes);
    expect(large.flags).toBe(1);
    expect(internals.codeToHttpStatus(Code.NotFound)).toBe(404);
    expect(JSON.parse(decode(internals.errorToJsonBytes(new ConnectError("gone", Code.NotFound), {})))).toEqual({ code: "not_found", message: "gone" });
    expect([...internals.trailerMux(new Headers({ a: "1" }), new Headers({ b: "2" }))]).toEqual([["a", "1"], ["trailer-b", "2"]]);
  });

  it("come from the exact connect-es version they were read from", async () => {
    const { readFile } = await import("node:fs/promises");
    const manifest = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as {
      dependencies: Record<string, string>;
    };
    expect(manifest.dependencies["@connectrpc/connect"]).toBe("2.1.2");
    expect(manifest.dependencies["@connectrpc/connect-node"]).toBe("2.1.2");
    const installed = JSON.parse(
      await readFile(new URL("../node_modules/@connectrpc/connect/package.json", import.meta.url), "utf8"),
    ) as { version: string };
    expect(installed.version).toBe("2.1.2");
  });
});
