import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerRequest } from "@connectrpc/connect/protocol";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import { asUndecodable } from "./connect-errors.js";
import {
  compressionNegotiate,
  createAsyncIterable,
  createMethodSerializationLookup,
  parseConnectContentType,
  parseGrpcContentType,
  parseGrpcWebContentType,
  pipe,
  transformDecompressEnvelope,
  transformParseEnvelope,
  transformSplitEnvelope,
  type Serialization,
} from "./subscribe-stream/connect-internals.js";
import { wrappedHandler } from "./wrapped-handler.js";

/** The request encodings Connect's Node.js adapter accepts by default, as the server leaves them. */
const COMPRESSIONS = [compressionGzip, compressionBrotli];

/** Flags byte and length before each message of gRPC and gRPC-Web. */
const ENVELOPE_HEADER_BYTES = 5;

/** How a binary request body carries its one message. */
export interface BinaryFraming {
  /** gRPC and gRPC-Web put it in an envelope; Connect's unary protocol sends it bare. */
  enveloped: boolean;
  /** The request header naming its compression. */
  encodingHeader: string;
}

/**
 * Makes every binary request that cannot be decoded INVALID_ARGUMENT, on each of the
 * router's handlers (all methods, Connect, gRPC and gRPC-Web alike).
 *
 * connect-es 2.1.2 decodes a request inside its protocol handlers, with a serialization
 * that reports any binary decoding failure as INTERNAL (HTTP 500, grpc-status 13), and
 * only then runs interceptors; its serialization options (`binaryOptions`) tune the
 * decoder but not that code. Neither can reach the failure, so each handler's request
 * body is held (up to one message's worth) and decoded by the same Connect steps first:
 * when that fails, the body ends with the failure as INVALID_ARGUMENT instead of its
 * last bytes, and Connect reports it in the protocol's own form, before the method runs.
 * A body that decodes is passed on unchanged, and every other failure (too large, an
 * unknown compression) is left for Connect to report as before.
 *
 * The price is a second decoding of binary requests; JSON ones, which Connect already
 * reports correctly, are passed through untouched.
 */
export function reportUndecodableRequests(router: ConnectRouter, readMaxBytes: number): void {
  router.handlers.forEach((handler, index) => {
    // Only where the request is one message: holding a request stream until it ends
    // would keep a bidirectional call (server reflection) from ever being answered.
    const kind = handler.method.methodKind;
    if (kind === "unary" || kind === "server_streaming") router.handlers[index] = checkingHandler(handler, readMaxBytes);
  });
}

function checkingHandler(handler: UniversalHandler, readMaxBytes: number): UniversalHandler {
  const limits = { readMaxBytes, writeMaxBytes: readMaxBytes };
  const binary = createMethodSerializationLookup(handler.method, undefined, undefined, limits).getI(true);
  const checked = (req: UniversalServerRequest) => {
    const framing = req.method === "POST" ? binaryFraming(req.header.get("content-type")) : undefined;
    if (framing === undefined || !isAsyncIterable(req.body)) return handler(req);
    const check = (raw: Uint8Array) => checkDecodable(raw, framing, req.header.get(framing.encodingHeader), binary, readMaxBytes);
    return handler({ ...req, body: heldUntilChecked(req.body, readMaxBytes + ENVELOPE_HEADER_BYTES, check) });
  };
  return wrappedHandler(handler, checked);
}

/** The framing of a binary unary or gRPC request; undefined for JSON, Connect streams (Subscribe's own) and anything else. */
function binaryFraming(contentType: string | null): BinaryFraming | undefined {
  if (contentType === null) return undefined;
  const connect = parseConnectContentType(contentType);
  if (connect) return connect.binary && !connect.stream ? { enveloped: false, encodingHeader: "content-encoding" } : undefined;
  const grpc = parseGrpcContentType(contentType);
  if (grpc) return grpc.binary ? { enveloped: true, encodingHeader: "grpc-encoding" } : undefined;
  const grpcWeb = parseGrpcWebContentType(contentType);
  if (grpcWeb) return grpcWeb.binary && !grpcWeb.text ? { enveloped: true, encodingHeader: "grpc-encoding" } : undefined;
  return undefined;
}

/**
 * The body's chunks, held until it ends and `check` has passed; a body larger than
 * `limit` cannot be one acceptable message, so it is passed on unchecked for Connect's
 * own limits to refuse.
 */
async function* heldUntilChecked(
  body: AsyncIterable<Uint8Array>,
  limit: number,
  check: (raw: Uint8Array) => Promise<void>,
): AsyncGenerator<Uint8Array> {
  const held: Uint8Array[] = [];
  let size = 0;
  let passing = false;
  for await (const chunk of body) {
    if (passing) {
      yield chunk;
      continue;
    }
    held.push(chunk);
    size += chunk.byteLength;
    if (size > limit) {
      passing = true;
      yield* held.splice(0);
    }
  }
  if (passing) return;
  await check(Buffer.concat(held));
  yield* held;
}

/**
 * Decodes the body as Connect will; throws INVALID_ARGUMENT only for what Connect would
 * call INTERNAL. The unary fast path runs it too, where a request is not the usual one.
 */
export async function checkDecodable(
  raw: Uint8Array,
  framing: BinaryFraming,
  encoding: string | null,
  serialization: Serialization<MessageShape<DescMessage>>,
  readMaxBytes: number,
): Promise<void> {
  const compression = compressionNegotiate(COMPRESSIONS, encoding, null, "accept-encoding");
  if (compression.error) return;
  try {
    if (!framing.enveloped) {
      const bytes = compression.request && raw.byteLength > 0 ? await compression.request.decompress(raw, readMaxBytes) : raw;
      serialization.parse(bytes);
      return;
    }
    // The usual unary body, one uncompressed envelope holding exactly the rest, is parsed
    // in place: the async steps below cost more than the parse on this hot path.
    if (raw.byteLength >= ENVELOPE_HEADER_BYTES && raw[0] === 0 && envelopeLength(raw) === raw.byteLength - ENVELOPE_HEADER_BYTES) {
      serialization.parse(raw.subarray(ENVELOPE_HEADER_BYTES));
      return;
    }
    const messages = pipe(
      createAsyncIterable([raw]),
      transformSplitEnvelope(readMaxBytes),
      transformDecompressEnvelope(compression.request, readMaxBytes),
      transformParseEnvelope(serialization),
    );
    for await (const message of messages) void message;
  } catch (error) {
    const reported = asUndecodable(error);
    if (reported !== error) throw reported;
  }
}

/** The message length an envelope's header announces (big-endian, after the flags byte). */
function envelopeLength(raw: Uint8Array): number {
  return ((raw[1] << 24) >>> 0) + (raw[2] << 16) + (raw[3] << 8) + raw[4];
}

function isAsyncIterable(body: unknown): body is AsyncIterable<Uint8Array> {
  return typeof body === "object" && body !== null && Symbol.asyncIterator in body;
}
