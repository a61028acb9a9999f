/**
 * The limit: a bare `ws` server that encodes each write once and sends that one
 * buffer to every socket of the group. Subscribers connect to `/sub/<group>`, the
 * writer to `/write`; each write is acknowledged with `{"ack": i}`.
 *
 *   node --import tsx bench/peers/ws-broadcast-server.ts [--port N]
 */
import { createServer } from "node:http";
import { WebSocketServer, type WebSocket } from "ws";
import { announceListening, portArgument } from "./listen-line.js";
import { wrapWrite, type PeerWrite } from "./wrapper-message.js";

const STREAM_NAME = "bench";
const JOINED = Buffer.from(JSON.stringify({ type: "joined" }));

const http = createServer();
const wss = new WebSocketServer({ server: http });
const groups = new Map<string, Set<WebSocket>>();
const offsets = new Map<string, number>();

function broadcast(write: PeerWrite): void {
  const offset = (offsets.get(write.groupId) ?? 0) + 1;
  offsets.set(write.groupId, offset);
  const encoded = Buffer.from(JSON.stringify(wrapWrite(STREAM_NAME, write, offset)));
  for (const socket of groups.get(write.groupId) ?? []) socket.send(encoded, { binary: false });
}

wss.on("connection", (socket, request) => {
  const path = request.url ?? "/";
  if (path === "/write") {
    socket.on("message", (data) => {
      const write = JSON.parse(data.toString()) as PeerWrite;
      broadcast(write);
      socket.send(`{"ack":${write.data.i}}`);
    });
    return;
  }
  const groupId = decodeURIComponent(path.replace(/^\/sub\//, ""));
  let members = groups.get(groupId);
  if (!members) groups.set(groupId, (members = new Set()));
  members.add(socket);
  socket.once("close", () => members.delete(socket));
  socket.send(JOINED);
});

http.listen(portArgument(), "127.0.0.1", () => announceListening(http, "ws"));
