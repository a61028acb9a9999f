import type http from "node:http";
import type http2 from "node:http2";
import type { JsonReadOptions } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import { StreamService, type SubscribeRequest } from "../../../gen/iii/stream/v1/stream_pb.js";
import {
  compressionNegotiate,
  createMethodSerializationLookup,
  pipe,
  transformDecompressEnvelope,
  transformParseEnvelope,
  transformSplitEnvelope,
  type Serialization,
} from "./connect-internals.js";
import type { WireProtocol } from "./wire-protocol.js";
import { asUndecodable } from "../connect-errors.js";

export type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;

/** The request encodings Connect's Node.js adapter accepts by default. */
const COMPRESSIONS = [compressionGzip, compressionBrotli];

export interface RequestReaderOptions {
  /** Largest request message, compressed or not, in bytes. */
  readMaxBytes: number;
  /** How JSON requests are read; the same options Connect uses for the other methods. */
  jsonOptions: Partial<JsonReadOptions>;
}

/**
 * Reads the one `SubscribeRequest` of a call: one envelope, decompressed (gzip or br)
 * and decoded as binary or JSON. The steps are Connect's own, so size limits and
 * malformed requests fail with the same messages as for the other methods, and with the
 * same codes: a request that cannot be decoded is INVALID_ARGUMENT (see asUndecodable).
 */
export class RequestReader {
  private readonly binary: Serialization<SubscribeRequest>;
  private readonly json: Serialization<SubscribeRequest>;

  constructor(private readonly options: RequestReaderOptions) {
    const limits = { readMaxBytes: options.readMaxBytes, writeMaxBytes: options.readMaxBytes };
    const serialization = createMethodSerializationLookup(StreamService.method.subscribe, undefined, options.jsonOptions, limits);
    this.binary = serialization.getI(true);
    this.json = serialization.getI(false);
  }

  async read(req: NodeRequest, protocol: WireProtocol): Promise<SubscribeRequest> {
    const { readMaxBytes } = this.options;
    const encoding = headerValue(req, protocol.encodingHeader);
    const compression = compressionNegotiate(COMPRESSIONS, encoding, null, protocol.acceptEncodingHeader);
    if (compression.error) throw compression.error;
    const serialization = protocol.binary ? this.binary : this.json;
    const messages = pipe(
      // Not destroyed when reading stops early: the error still has to be answered on it.
      { [Symbol.asyncIterator]: () => req.iterator({ destroyOnReturn: false }) as AsyncIterator<Uint8Array> },
      transformSplitEnvelope(readMaxBytes),
      transformDecompressEnvelope(compression.request, readMaxBytes),
      protocol.requestEndStreamFlag === undefined
        ? transformParseEnvelope(serialization)
        : transformParseEnvelope(serialization, protocol.requestEndStreamFlag),
    );
    try {
      return await single(messages);
    } catch (error) {
      throw asUndecodable(error);
    }
  }
}

/** A header as one string (repeated ones joined, as in the Fetch API), or null. */
export function headerValue(req: NodeRequest, name: string): string | null {
  const value = req.headers[name];
  if (value === undefined) return null;
  return Array.isArray(value) ? value.join(", ") : value;
}

/** A server-streaming call takes exactly one request message. */
async function single(messages: AsyncIterable<SubscribeRequest>): Promise<SubscribeRequest> {
  const iterator = messages[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done === true) {
    throw new ConnectError("protocol error: missing input message for server-streaming method", Code.Unimplemented);
  }
  const second = await iterator.next();
  if (second.done !== true) {
    await iterator.return?.();
    throw new ConnectError("protocol error: received extra input message for server-streaming method", Code.Unimplemented);
  }
  return first.value;
}
