/**
 * The ceiling of this stack: a connect-node server whose Set (and Get) does nothing but answer,
 * on one port that speaks HTTP/1.1 and HTTP/2 (h2c) as iii-stream's does, so a unary
 * call costs everything but our own work.
 *
 *   node --import tsx bench/peers/noop-connect-server.ts [--port N]
 */
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { create } from "@bufbuild/protobuf";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { GetResponseSchema, SetResponseSchema, StreamService } from "../../gen/iii/stream/v1/stream_pb.js";
import { announceListening, portArgument } from "./listen-line.js";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

const handler = connectNodeAdapter({
  routes: (router) => router.service(StreamService, { set: () => create(SetResponseSchema), get: () => create(GetResponseSchema) }),
});
const http1 = http.createServer(handler);
const h2c = http2.createServer(handler);

const listener = net.createServer((socket) => {
  // Same routing as iii-stream: HTTP/2 by its connection preface, HTTP/1.1 otherwise.
  socket.once("data", (chunk: Buffer) => {
    socket.pause();
    socket.unshift(chunk);
    const length = Math.min(chunk.length, PREFACE.length);
    if (chunk.subarray(0, length).equals(PREFACE.subarray(0, length))) {
      h2c.emit("connection", socket);
    } else {
      http1.emit("connection", socket);
      socket.resume();
    }
  });
});
listener.listen(portArgument(), "127.0.0.1", () => announceListening(listener, "noop-connect"));
