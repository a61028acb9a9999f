import type http from "node:http";
import type http2 from "node:http2";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, type HandlerContext } from "@connectrpc/connect";
import { createDeadlineSignal, createLinkedAbortController, type Compression } from "@connectrpc/connect/protocol";
import type { UnaryProtocol } from "./unary-protocols.js";

export type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

/** The compressions a call negotiated, as compressionNegotiate returns them. */
export interface NegotiatedCompression {
  request: Compression | null;
  response: Compression | null;
}

const CALL = Symbol("unary call");

/**
 * One unary call of the fast path: at once the request the interceptors see (Connect's
 * UnaryRequest) and the context the method implementation gets (Connect's
 * HandlerContext), with the same fields and values Connect gives them. What most calls
 * never read (the request and response headers, the abort signal, the URL) is built
 * only when first read: building them for every call is most of what Connect's
 * per-call machinery costs.
 */
export class UnaryCall {
  readonly stream = false;
  readonly requestMethod = "POST";
  readonly protocolName: string;
  readonly [CALL]: UnaryCall = this;
  private requestHeaders: Headers | undefined;
  private responseHeaders: Headers | undefined;
  private responseTrailers: Headers | undefined;
  private controller: AbortController | undefined;
  private deadlineCleanup: (() => void) | undefined;
  private readonly deadline: number | undefined;
  private urlString: string | undefined;

  constructor(
    readonly service: DescService,
    readonly method: DescMethod,
    public message: unknown,
    private readonly req: NodeRequest,
    private readonly res: NodeResponse,
    readonly protocol: UnaryProtocol,
    private readonly timeout: number | undefined,
    readonly contextValues: ContextValues,
    /** The response compression negotiated: gRPC and gRPC-Web name it in a header from the start. */
    private readonly responseEncoding: string | undefined,
  ) {
    this.protocolName = protocol.family;
    this.deadline = timeout === undefined ? undefined : Date.now() + timeout;
  }

  /** The request's headers as Connect gives them (pseudo-headers left out, repeated ones appended). */
  get header(): Headers {
    return (this.requestHeaders ??= new RequestHeaders(this.req.headers) as unknown as Headers);
  }

  get requestHeader(): Headers {
    return this.header;
  }

  get values(): ContextValues {
    return this.contextValues;
  }

  /** The URL as Connect builds it: scheme by the socket, the authority, the path. */
  get url(): string {
    if (this.urlString === undefined) {
      const encrypted = "encrypted" in this.req.socket && (this.req.socket as { encrypted?: boolean }).encrypted === true;
      const authority = "authority" in this.req ? this.req.authority : this.req.headers.host;
      this.urlString = new URL(this.req.url ?? "", `${encrypted ? "https" : "http"}://${authority}`).toString();
    }
    return this.urlString;
  }

  /** Aborted at the deadline, when the client goes away, and when the call is over, as Connect's is. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      const deadline = createDeadlineSignal(this.timeout);
      this.deadlineCleanup = deadline.cleanup;
      const request = new AbortController();
      this.res.once("close", () => request.abort());
      this.controller = createLinkedAbortController(deadline.signal, request.signal);
    }
    return this.controller.signal;
  }

  timeoutMs(): number | undefined {
    return this.deadline === undefined ? undefined : this.deadline - Date.now();
  }

  /** Starts as Connect's does: the content type, and gRPC's response encoding. */
  get responseHeader(): Headers {
    if (this.responseHeaders === undefined) {
      this.responseHeaders = new Headers({ "content-type": this.protocol.contentType });
      if (this.responseEncoding !== undefined && this.protocol.family !== "connect") this.responseHeaders.set("grpc-encoding", this.responseEncoding);
    }
    return this.responseHeaders;
  }

  /** Starts as Connect's does: gRPC's and gRPC-Web's with status 0. */
  get responseTrailer(): Headers {
    return (this.responseTrailers ??= new Headers(this.protocol.family === "connect" ? {} : { "grpc-status": "0" }));
  }

  /** Response headers an interceptor or the implementation set, if any did. */
  get setResponseHeaders(): Headers | undefined {
    return this.responseHeaders;
  }

  get setResponseTrailers(): Headers | undefined {
    return this.responseTrailers;
  }

  /** Ends the signal, if anyone asked for it, as Connect does when a call is over. */
  finish(reason?: unknown): void {
    if (this.controller === undefined) return;
    this.deadlineCleanup?.();
    this.controller.abort(reason);
  }
}

/** The call a request (ours, or an interceptor's copy of it) belongs to. */
export function callOf(req: object): UnaryCall | undefined {
  return (req as { [CALL]?: UnaryCall })[CALL];
}

/**
 * The context of the implementation for the request an interceptor passed on: the call
 * itself, or, when an interceptor replaced the request, the call with the replacement's
 * headers, signal and values, as Connect merges them.
 */
export function contextFor(req: { header: Headers; signal: AbortSignal; contextValues: ContextValues }): HandlerContext {
  const call = callOf(req);
  if (call === undefined) throw new ConnectError("the request lost its call", Code.Internal);
  if (req === (call as unknown)) return call as unknown as HandlerContext;
  return Object.assign(Object.create(call) as HandlerContext, {
    requestHeader: req.header,
    signal: req.signal,
    values: req.contextValues,
  });
}

/** Headers' methods, declared as methods so that a subclass may override them (the DOM types declare them as properties). */
interface HeadersMethods {
  get(name: string): string | null;
  has(name: string): boolean;
  set(name: string, value: string): void;
  append(name: string, value: string): void;
  delete(name: string): void;
  getSetCookie(): string[];
  forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void;
  entries(): IterableIterator<[string, string]>;
  keys(): IterableIterator<string>;
  values(): IterableIterator<string>;
  [Symbol.iterator](): IterableIterator<[string, string]>;
}

/**
 * Node's request headers as Connect converts them (nodeHeaderToWebHeader), filled in only
 * when something needs more than `get` or `has`: the interceptors ask for one or two
 * headers per call, and copying every header into a Headers object (which validates each
 * name and value) cost more than the rest of the call's bookkeeping.
 */
class RequestHeaders extends (Headers as unknown as new () => HeadersMethods) {
  private node: NodeRequest["headers"] | undefined;

  constructor(node: NodeRequest["headers"]) {
    super();
    this.node = node;
  }

  override get(name: string): string | null {
    if (this.node === undefined) return super.get(name);
    const key = name.toLowerCase();
    if (key.startsWith(":")) return null;
    const value = this.node[key];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(", ") : String(value);
  }

  override has(name: string): boolean {
    return this.get(name) !== null;
  }

  override set(name: string, value: string): void {
    this.fill();
    super.set(name, value);
  }

  override append(name: string, value: string): void {
    this.fill();
    super.append(name, value);
  }

  override delete(name: string): void {
    this.fill();
    super.delete(name);
  }

  override getSetCookie(): string[] {
    this.fill();
    return super.getSetCookie();
  }

  override forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void {
    this.fill();
    super.forEach(callback, thisArg);
  }

  override entries(): IterableIterator<[string, string]> {
    this.fill();
    return super.entries();
  }

  override keys(): IterableIterator<string> {
    this.fill();
    return super.keys();
  }

  override values(): IterableIterator<string> {
    this.fill();
    return super.values();
  }

  override [Symbol.iterator](): IterableIterator<[string, string]> {
    this.fill();
    return super[Symbol.iterator]();
  }

  private fill(): void {
    const node = this.node;
    if (node === undefined) return;
    this.node = undefined;
    for (const key in node) {
      if (key.startsWith(":")) continue;
      const value = node[key];
      if (value === undefined) continue;
      if (typeof value === "string") super.append(key, value);
      else if (typeof value === "number") super.append(key, String(value));
      else for (const entry of value) super.append(key, entry);
    }
  }
}
