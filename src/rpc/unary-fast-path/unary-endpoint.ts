import type http from "node:http";
import type http2 from "node:http2";
import { create, isMessage, type Message, type DescMethod, type DescService, type JsonReadOptions, type JsonWriteOptions } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, type Interceptor, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import { asUndecodable } from "../connect-errors.js";
import { checkDecodable } from "../undecodable-requests.js";
import { envelope } from "../subscribe-stream/envelope.js";
import {
  codeToHttpStatus,
  compressionNegotiate,
  createAsyncIterable,
  createMethodSerializationLookup,
  envelopeCompress,
  errorToJsonBytes,
  pipe,
  readAllBytes,
  setTrailerStatus,
  trailerFlag,
  trailerMux,
  trailerSerialize,
  transformDecompressEnvelope,
  transformParseEnvelope,
  transformSplitEnvelope,
  validateReadWriteMaxBytes,
  type Serialization,
} from "../subscribe-stream/connect-internals.js";
import { callOf, contextFor, UnaryCall, type NegotiatedCompression, type NodeRequest, type NodeResponse } from "./unary-call.js";
import { unaryProtocolOf, type UnaryProtocol } from "./unary-protocols.js";
import { isStreamRequest, streamExchange } from "./http2-exchange.js";
import { holdBody, holdStreamBody, replay, type HeldBody } from "./held-body.js";

/** The request encodings Connect's Node.js adapter accepts by default, as the server leaves them. */
const COMPRESSIONS = [compressionGzip, compressionBrotli];
const NO_COMPRESSION: NegotiatedCompression = { request: null, response: null };
/** Flags byte and length before each message of gRPC and gRPC-Web. */
const ENVELOPE_HEADER_BYTES = 5;

/** A service and its implementation, as given to Connect's router (methods by local name). */
export interface UnaryService {
  service: DescService;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  impl: Record<string, any>;
}

export interface UnaryFastPathOptions {
  /** The services whose unary methods the fast path serves; every unary method of each, by its descriptor. */
  services: UnaryService[];
  /** The interceptors Connect runs, in the same order (the first is the outermost). */
  interceptors: Interceptor[];
  /** Largest request message in bytes: Connect's readMaxBytes for the other calls. */
  readMaxBytes: number;
  /** How JSON is read and written: the options Connect gets. */
  jsonOptions: Partial<JsonReadOptions & JsonWriteOptions>;
  /** The values Connect hands each call (contextValues of its Node.js adapter). */
  contextValues(req: NodeRequest): ContextValues;
}

/** A call the fast path takes, as its headers describe it. */
interface Plan {
  method: Method;
  protocol: UnaryProtocol;
  timeout: number | undefined;
  compression: NegotiatedCompression;
}

interface Method {
  service: DescService;
  method: DescMethod;
  input: { binary: Serialization<Message>; json: Serialization<Message> };
  output: { binary: Serialization<Message>; json: Serialization<Message> };
  /** The interceptors around the implementation, composed once. */
  run: (req: UnaryRequest) => Promise<UnaryResponse>;
}

/**
 * Unary calls without connect-node's per-call pipeline: the same protocols, limits,
 * errors and interceptors, built from connect-es's own protocol functions, but without
 * the universal request and response, the async-iterable plumbing and the per-call
 * abort signals and header objects that nobody reads. It serves each unary method of
 * the services it is given, found by their descriptors (a new method is served as soon
 * as it is in the proto and implemented).
 *
 * It takes only the calls whose shape it serves exactly as Connect would, and decides
 * that from the headers alone, before reading a byte: a POST to a unary method's path,
 * with one of the content types clients send (unaryProtocolOf), gRPC only over HTTP/2,
 * a valid timeout header if any and a compression it knows. Everything else (GET,
 * other content types, bad headers) returns false and goes to Connect, which answers it
 * as before, so refusals stay Connect's own. What it must answer itself, because it
 * depends on the body, it answers with Connect's steps:
 * - the body is read whole up to the limit; beyond it, or when the length or the
 *   framing is not the usual one, the request goes through Connect's own reading
 *   functions (readAllBytes, the envelope transforms), over the bytes held and the rest;
 * - a binary request that cannot be decoded is INVALID_ARGUMENT, as
 *   reportUndecodableRequests makes it for the plain path;
 * - the interceptors see a request with every field Connect gives them, and errors are
 *   written by Connect's own serializers (error JSON, gRPC trailer status, gRPC-Web
 *   trailers), with the same compression of responses.
 * test/unary-fast-path.test.ts sends a corpus of calls to both paths and compares them.
 */
export class UnaryFastPath {
  private readonly methods = new Map<string, Method>();
  private readonly readMaxBytes: number;
  private readonly compressMinBytes: number;

  constructor(private readonly options: UnaryFastPathOptions) {
    const limits = validateReadWriteMaxBytes(options.readMaxBytes, undefined, undefined);
    this.readMaxBytes = limits.readMaxBytes;
    this.compressMinBytes = limits.compressMinBytes;
    for (const { service, impl } of options.services) {
      for (const method of service.methods) {
        if (method.methodKind !== "unary") continue;
        const lookup = createMethodSerializationLookup(method, undefined, options.jsonOptions, limits);
        this.methods.set(`/${service.typeName}/${method.name}`, {
          service,
          method,
          input: { binary: lookup.getI(true), json: lookup.getI(false) },
          output: { binary: lookup.getO(true), json: lookup.getO(false) },
          run: compose(options.interceptors, implementation(service, method, impl)),
        });
      }
    }
  }

  /** Serves the request and returns true if it is a call the fast path takes; returns false and leaves it alone otherwise. */
  serve(req: NodeRequest, res: NodeResponse): boolean {
    const plan = this.plan(req.method, req.url, req.headers, req.httpVersionMajor === 2);
    if (plan === undefined) return false;
    this.start(plan, req, res);
    return true;
  }

  /**
   * The same for an HTTP/2 stream before Node's compatibility layer has made a request and
   * a response of it (see OnePortListener's raw stream handler): a call it takes is served
   * on the stream itself, anything else is left for that layer and the routes.
   */
  serveStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): boolean {
    const plan = this.plan(headers[":method"], headers[":path"], headers, true);
    if (plan === undefined) return false;
    const { req, res } = streamExchange(stream, headers);
    this.start(plan, req, res);
    return true;
  }

  /** What the fast path needs to serve a call, from its headers alone; undefined when it leaves the call to Connect. */
  private plan(verb: string | undefined, url = "", headers: http.IncomingHttpHeaders, http2: boolean): Plan | undefined {
    if (verb !== "POST") return undefined;
    const query = url.indexOf("?");
    const method = this.methods.get(query < 0 ? url : url.slice(0, query));
    if (method === undefined) return undefined;
    const protocol = unaryProtocolOf(headers["content-type"]);
    if (protocol === undefined) return undefined;
    // gRPC over HTTP/1.1 has no trailers to carry its status; and Connect refuses a call it cannot name the authority of.
    if (protocol.family === "grpc" && !http2) return undefined;
    if (!http2 && headers.host === undefined) return undefined;
    let timeout: number | undefined;
    const timeoutHeader = headers[protocol.timeoutHeader];
    if (timeoutHeader !== undefined) {
      if (typeof timeoutHeader !== "string") return undefined;
      const parsed = protocol.parseTimeout(timeoutHeader);
      if (parsed.error) return undefined;
      timeout = parsed.timeoutMs;
    }
    let compression = NO_COMPRESSION;
    const encoding = headers[protocol.encodingHeader];
    const accept = headers[protocol.acceptEncodingHeader];
    if (encoding !== undefined || accept !== undefined) {
      if (Array.isArray(encoding) || Array.isArray(accept)) return undefined;
      const negotiated = compressionNegotiate(COMPRESSIONS, encoding ?? null, accept ?? null, protocol.acceptEncodingHeader);
      if (negotiated.error) return undefined;
      compression = negotiated;
    }
    return { method, protocol, timeout, compression };
  }

  private start({ method, protocol, timeout, compression }: Plan, req: NodeRequest, res: NodeResponse): void {
    const call = new UnaryCall(
      method.service,
      method.method,
      undefined,
      req,
      res,
      protocol,
      timeout,
      this.options.contextValues(req),
      compression.response?.name,
    );
    void this.run(method, call, req, res, compression).catch(() => {
      // Only a response that cannot be written anymore (the client went away) gets here.
      if (!res.headersSent) res.destroy();
    });
  }

  private async run(method: Method, call: UnaryCall, req: NodeRequest, res: NodeResponse, compression: NegotiatedCompression): Promise<void> {
    const { protocol } = call;
    let output: Message | undefined;
    let failure: ConnectError | undefined;
    try {
      call.message = await this.readInput(method, req, protocol, compression);
      const response = await method.run(call as unknown as UnaryRequest);
      output = response.message as Message;
      // An interceptor that answered with a response of its own: its headers count, as Connect copies them.
      if (!(response instanceof UnaryResult)) {
        response.header.forEach((value, key) => call.responseHeader.set(key, value));
        response.trailer.forEach((value, key) => call.responseTrailer.set(key, value));
      }
    } catch (error) {
      failure = error instanceof ConnectError ? error : new ConnectError("internal error", Code.Internal, undefined, undefined, error);
    }
    if (failure === undefined) {
      let body: Uint8Array | undefined;
      try {
        body = (protocol.binary ? method.output.binary : method.output.json).serialize(output!);
      } catch (error) {
        failure = error instanceof ConnectError ? error : new ConnectError("internal error", Code.Internal, undefined, undefined, error);
      }
      if (body !== undefined) {
        call.finish();
        return this.writeOutput(call, res, body, compression);
      }
    }
    call.finish(failure);
    await this.writeError(call, res, failure as ConnectError, compression);
  }

  /** The request's one message, read as Connect reads it (see the class comment). */
  private async readInput(method: Method, req: NodeRequest, protocol: UnaryProtocol, compression: NegotiatedCompression): Promise<unknown> {
    const readMaxBytes = this.readMaxBytes;
    const serialization = protocol.binary ? method.input.binary : method.input.json;
    const enveloped = protocol.family !== "connect";
    const lengthHint = enveloped ? undefined : req.headers["content-length"];
    // Connect refuses a body announced too large before reading it.
    if (lengthHint !== undefined && parseInt(lengthHint, 10) > readMaxBytes) {
      await readAllBytes(createAsyncIterable([]), readMaxBytes, lengthHint);
    }
    const limit = readMaxBytes + (enveloped ? ENVELOPE_HEADER_BYTES : 0);
    const held = await (isStreamRequest(req) ? holdStreamBody(req.stream, req, limit) : holdBody(req, limit));
    if (held.complete && compression.request === null) {
      const raw = held.chunks.length === 1 ? held.chunks[0] : Buffer.concat(held.chunks, held.size);
      const usual = enveloped
        ? raw.byteLength >= ENVELOPE_HEADER_BYTES && raw[0] === 0 && raw.readUInt32BE(1) === raw.byteLength - ENVELOPE_HEADER_BYTES
        : lengthHint === undefined || lengthHint === String(raw.byteLength);
      if (usual) {
        try {
          return serialization.parse(enveloped ? raw.subarray(ENVELOPE_HEADER_BYTES) : raw);
        } catch (error) {
          throw protocol.binary ? asUndecodable(error) : error;
        }
      }
    }
    return this.readInputSlowly(held, req, protocol, compression, serialization, lengthHint);
  }

  /** Connect's own steps, after the check the plain path makes of binary bodies (reportUndecodableRequests). */
  private async readInputSlowly(
    held: HeldBody,
    req: NodeRequest,
    protocol: UnaryProtocol,
    compression: NegotiatedCompression,
    serialization: Serialization<Message>,
    lengthHint: string | undefined,
  ): Promise<unknown> {
    const readMaxBytes = this.readMaxBytes;
    const enveloped = protocol.family !== "connect";
    if (protocol.binary && held.complete) {
      const framing = { enveloped, encodingHeader: protocol.encodingHeader };
      const encoding = req.headers[protocol.encodingHeader];
      await checkDecodable(Buffer.concat(held.chunks, held.size), framing, typeof encoding === "string" ? encoding : null, serialization, readMaxBytes);
    }
    const body = replay(held, req);
    if (!enveloped) {
      let bytes = await readAllBytes(body, readMaxBytes, lengthHint ?? null);
      if (compression.request) bytes = await compression.request.decompress(bytes, readMaxBytes);
      return serialization.parse(bytes);
    }
    const messages = pipe(
      body,
      transformSplitEnvelope(readMaxBytes),
      transformDecompressEnvelope(compression.request, readMaxBytes),
      protocol.family === "grpc-web" ? transformParseEnvelope(serialization, trailerFlag) : transformParseEnvelope(serialization),
    );
    return single(messages);
  }

  private async writeOutput(call: UnaryCall, res: NodeResponse, message: Uint8Array, compression: NegotiatedCompression): Promise<void> {
    const { protocol } = call;
    const header = call.setResponseHeaders;
    const trailer = call.setResponseTrailers;
    if (protocol.family === "connect") {
      let body = message;
      let encoding: string | undefined;
      if (compression.response && body.byteLength >= this.compressMinBytes) {
        body = await compression.response.compress(body);
        encoding = compression.response.name;
      }
      if (header === undefined && trailer === undefined) {
        const head: Record<string, string> = encoding === undefined ? {} : { "content-encoding": encoding };
        head["content-length"] = String(body.byteLength);
        head["content-type"] = protocol.contentType;
        res.writeHead(200, head);
      } else {
        const all = trailerMux(call.responseHeader, call.responseTrailer);
        if (encoding !== undefined) all.set("content-encoding", encoding);
        all.set("content-length", String(body.byteLength));
        res.writeHead(200, nodeHeaders(all));
      }
      res.end(body);
      return;
    }
    const first = await envelopeCompress({ flags: 0, data: message }, compression.response, this.compressMinBytes);
    const head =
      header === undefined
        ? compression.response
          ? { "content-type": protocol.contentType, "grpc-encoding": compression.response.name }
          : { "content-type": protocol.contentType }
        : nodeHeaders(header);
    if (protocol.family === "grpc") {
      res.writeHead(200, head);
      res.addTrailers(trailer === undefined ? { "grpc-status": "0" } : nodeHeaders(trailer));
      res.end(envelope(first.flags, first.data));
      return;
    }
    const end = await envelopeCompress({ flags: trailerFlag, data: trailerSerialize(call.responseTrailer) }, compression.response, this.compressMinBytes);
    res.writeHead(200, head);
    res.end(Buffer.concat([envelope(first.flags, first.data), envelope(end.flags, end.data)]));
  }

  private async writeError(call: UnaryCall, res: NodeResponse, error: ConnectError, compression: NegotiatedCompression): Promise<void> {
    const { protocol } = call;
    if (protocol.family === "connect") {
      const header = call.responseHeader;
      header.set("content-type", "application/json");
      error.metadata.forEach((value, key) => header.set(key, value));
      let body: Uint8Array = errorToJsonBytes(error, this.options.jsonOptions);
      if (compression.response && body.byteLength >= this.compressMinBytes) {
        body = await compression.response.compress(body);
        header.set("content-encoding", compression.response.name);
      }
      const all = trailerMux(header, call.responseTrailer);
      all.set("content-length", String(body.byteLength));
      res.writeHead(codeToHttpStatus(error.code), nodeHeaders(all));
      res.end(body);
      return;
    }
    const trailer = setTrailerStatus(call.responseTrailer, error);
    if (protocol.family === "grpc") {
      res.writeHead(200, nodeHeaders(call.responseHeader));
      res.addTrailers(nodeHeaders(trailer));
      res.end();
      return;
    }
    const end = await envelopeCompress({ flags: trailerFlag, data: trailerSerialize(trailer) }, compression.response, this.compressMinBytes);
    res.writeHead(200, nodeHeaders(call.responseHeader));
    res.end(envelope(end.flags, end.data));
  }
}

/** The implementation of one method as Connect calls it, innermost in the interceptor chain. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function implementation(service: DescService, method: DescMethod, impl: Record<string, any>): (req: UnaryRequest) => Promise<UnaryResponse> {
  const fn = impl[method.localName] as ((message: unknown, context: unknown) => unknown) | undefined;
  const unimplemented = `${service.typeName}.${method.name} is not implemented`;
  return async (req) => {
    if (typeof fn !== "function") throw new ConnectError(unimplemented, Code.Unimplemented);
    const context = contextFor(req);
    const result = await fn.call(impl, req.message, context);
    return new UnaryResult(isMessage(result, method.output) ? result : create(method.output, result as never), method, service, callOf(req)!) as unknown as UnaryResponse;
  };
}

/**
 * The response the interceptors see, as Connect's: its headers and trailers are the
 * call's, built only if someone reads them.
 */
class UnaryResult {
  readonly stream = false;

  constructor(
    readonly message: Message,
    readonly method: DescMethod,
    readonly service: DescService,
    private readonly call: UnaryCall,
  ) {}

  get header(): Headers {
    return this.call.responseHeader;
  }

  get trailer(): Headers {
    return this.call.responseTrailer;
  }
}

/** Interceptors around a call as Connect applies them: the first in the list is the outermost. */
function compose(interceptors: Interceptor[], inner: (req: UnaryRequest) => Promise<UnaryResponse>): (req: UnaryRequest) => Promise<UnaryResponse> {
  let next = inner as Parameters<Interceptor>[0];
  for (let i = interceptors.length - 1; i >= 0; i--) next = interceptors[i](next);
  return next as (req: UnaryRequest) => Promise<UnaryResponse>;
}

/** A unary call takes exactly one request message (Connect's own messages). */
async function single(messages: AsyncIterable<unknown>): Promise<unknown> {
  const iterator = messages[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done === true) throw new ConnectError("protocol error: missing input message for unary method", Code.Unimplemented);
  const second = await iterator.next();
  if (second.done !== true) throw new ConnectError("protocol error: received extra input message for unary method", Code.Unimplemented);
  return first.value;
}

/** Headers as Connect's Node.js adapter writes them (webHeaderToNodeHeaders): lower-case names, in Headers' order. */
function nodeHeaders(header: Headers): http.OutgoingHttpHeaders & http2.OutgoingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  header.forEach((value, key) => {
    if (key === "set-cookie") out[key] = header.getSetCookie();
    else out[key] = value;
  });
  return out;
}
