import type http2 from "node:http2";
import type { Socket } from "node:net";
import type { NodeRequest, NodeResponse } from "./unary-call.js";

/** Node's Date header value, made once a second as Node's own servers make it. */
let dateSecond = 0;
let dateValue = "";
function utcDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = new Date(now).toUTCString();
  }
  return dateValue;
}

/**
 * The request side of an HTTP/2 stream, with the members of Node's compatibility request
 * (Http2ServerRequest) that the fast path reads: building that request and its response for
 * every stream is a large part of what an HTTP/2 call costs in Node, and the fast path
 * needs little of them.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- event listeners of any event, as Node types them */
class StreamRequest {
  readonly httpVersionMajor = 2;
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly authority: string | undefined;

  constructor(
    readonly stream: http2.ServerHttp2Stream,
    readonly headers: http2.IncomingHttpHeaders,
  ) {
    this.method = headers[":method"];
    this.url = headers[":path"];
    this.authority = headers[":authority"] ?? headers.host;
  }

  get socket(): Socket {
    return this.stream.session?.socket as Socket;
  }

  on(event: string, listener: (...args: any[]) => void): this {
    this.stream.on(event, listener);
    return this;
  }

  once(event: string, listener: (...args: any[]) => void): this {
    this.stream.once(event, listener);
    return this;
  }

  off(event: string, listener: (...args: any[]) => void): this {
    this.stream.off(event, listener);
    return this;
  }

  pause(): this {
    this.stream.pause();
    return this;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this.stream[Symbol.asyncIterator]();
  }
}

/**
 * The response side, answering as Node's compatibility response does: a Date header, the
 * headers as given, the body, then the trailers. Node's response always waits to send
 * trailers and, when it has none, ends the stream with an extra empty DATA frame; a
 * response without trailers (every Connect answer) ends with its body's frame here, which
 * a client cannot tell apart and which costs a frame and an event less per call.
 */
class StreamResponse {
  private trailers: http2.OutgoingHttpHeaders | undefined;
  private status = 200;
  private head: http2.OutgoingHttpHeaders = {};

  constructor(private readonly stream: http2.ServerHttp2Stream) {}

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  writeHead(status: number, headers: http2.OutgoingHttpHeaders): this {
    this.status = status;
    this.head = headers;
    return this;
  }

  addTrailers(trailers: http2.OutgoingHttpHeaders): void {
    this.trailers = trailers;
  }

  end(body?: Uint8Array): this {
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return this;
    const trailers = this.trailers;
    const head = { ...this.head, ":status": this.status, date: utcDate() };
    if (trailers === undefined) stream.respond(head);
    else {
      stream.once("wantTrailers", () => stream.sendTrailers(trailers));
      stream.respond(head, { waitForTrailers: true });
    }
    if (body === undefined) stream.end();
    else stream.end(body);
    return this;
  }

  once(event: string, listener: () => void): this {
    this.stream.once(event, listener);
    return this;
  }

  destroy(): void {
    this.stream.destroy();
  }
}

/** Whether a request is a raw HTTP/2 stream's (streamExchange), whose body is read from the stream itself. */
export function isStreamRequest(req: NodeRequest): req is NodeRequest & { stream: http2.ServerHttp2Stream } {
  return req instanceof StreamRequest;
}

/** A raw HTTP/2 stream as the request and response the fast path serves. */
export function streamExchange(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): { req: NodeRequest; res: NodeResponse } {
  // Until the call takes its events, an error (a reset stream) must have a listener: unheard, it would end the process.
  stream.on("error", () => undefined);
  return {
    req: new StreamRequest(stream, headers) as unknown as NodeRequest,
    res: new StreamResponse(stream) as unknown as NodeResponse,
  };
}
