/**
 * The Node baseline users would pick instead: a Socket.IO server (WebSocket transport)
 * where subscribers join a room per group and a writer's message is broadcast to the
 * room, then acknowledged to the writer as a Set is.
 *
 *   node --import tsx bench/peers/socket-io-server.ts [--port N]
 */
import { createServer } from "node:http";
import { Server } from "socket.io";
import { announceListening, portArgument } from "./listen-line.js";
import { wrapWrite, type PeerWrite } from "./wrapper-message.js";

const STREAM_NAME = "bench";

const http = createServer();
const io = new Server(http, { transports: ["websocket"], serveClient: false });
const offsets = new Map<string, number>();

io.on("connection", (socket) => {
  socket.on("join", (groupId: string, ack: () => void) => {
    void socket.join(groupId);
    ack();
  });
  socket.on("write", (write: PeerWrite, ack: () => void) => {
    const offset = (offsets.get(write.groupId) ?? 0) + 1;
    offsets.set(write.groupId, offset);
    io.to(write.groupId).emit("change", wrapWrite(STREAM_NAME, write, offset));
    ack();
  });
});

http.listen(portArgument(), "127.0.0.1", () => announceListening(http, "socket.io"));
