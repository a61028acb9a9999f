/**
 * `iii-stream/client` in browsers: fetch for Connect and gRPC-Web (connect-web) and the
 * browser's WebSocket for the stream socket. Nothing here reaches Node's modules.
 */
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { ErrorCode, StreamError } from "./errors.js";
import type { StreamClientOptions } from "./options.js";
import type { Platform } from "./platform.js";
import { StreamClient } from "./stream-client.js";

export * from "./exports.js";

const browserPlatform: Platform = {
  // A page cannot see protocol pings: a socket's close is what tells it the connection went.
  seesPings: false,
  transport(name, baseUrl, interceptors) {
    if (name === "grpc") throw new StreamError(ErrorCode.InvalidArgument, "the grpc transport needs HTTP/2 trailers, which browsers do not expose: use connect or grpc-web");
    const transport =
      name === "grpc-web" ? createGrpcWebTransport({ baseUrl, interceptors }) : createConnectTransport({ baseUrl, useBinaryFormat: true, interceptors });
    return { transport, close: () => undefined };
  },
  openSocket(url, _headers, handlers) {
    const socket = new WebSocket(url);
    socket.onopen = () => handlers.open();
    socket.onmessage = (event) => {
      if (typeof event.data === "string") handlers.message(event.data);
    };
    socket.onclose = (event) => handlers.close(event.code, event.reason);
    return { send: (text) => socket.send(text), close: () => socket.close() };
  },
};

/** A client of an iii-stream server. Close it when done: it holds connections. */
export function createStreamClient(options: StreamClientOptions): StreamClient {
  return new StreamClient(options, browserPlatform);
}
