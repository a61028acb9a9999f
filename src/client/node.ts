/**
 * `iii-stream/client` in Node: HTTP/2 for Connect and gRPC (one session per client,
 * replaced when found dead), and the `ws` package for the stream socket, whose protocol
 * pings prove a quiet connection alive.
 */
import {
  Http2SessionManager,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import WebSocket from "ws";
import type { StreamClientOptions } from "./options.js";
import type { Platform } from "./platform.js";
import { StreamClient } from "./stream-client.js";

export * from "./exports.js";

const nodePlatform: Platform = {
  seesPings: true,
  transport(name, baseUrl, interceptors) {
    const sessionManager = new Http2SessionManager(baseUrl);
    const options = { baseUrl, httpVersion: "2" as const, sessionManager, interceptors };
    const transport =
      name === "grpc"
        ? createGrpcTransport(options)
        : name === "grpc-web"
          ? createGrpcWebTransport(options)
          : createConnectTransport({ ...options, useBinaryFormat: true });
    return { transport, close: () => sessionManager.abort() };
  },
  openSocket(url, headers, handlers) {
    const socket = new WebSocket(url, { headers });
    socket.on("open", handlers.open);
    socket.on("message", (data: Buffer, isBinary: boolean) => handlers.message(isBinary ? data.toString("utf8") : data.toString()));
    socket.on("ping", handlers.alive);
    socket.on("close", (code: number, reason: Buffer) => handlers.close(code, reason.toString()));
    // A failed handshake is followed by `close`; the error itself says nothing more.
    socket.on("error", () => undefined);
    return { send: (text) => socket.send(text), close: () => socket.terminate() };
  },
};

/** A client of an iii-stream server. Close it when done: it holds connections. */
export function createStreamClient(options: StreamClientOptions): StreamClient {
  return new StreamClient(options, nodePlatform);
}
