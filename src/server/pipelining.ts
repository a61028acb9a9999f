import type http from "node:http";
import type net from "node:net";

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** The requests of one HTTP/1.1 connection: the one being served and those parsed behind it. */
interface Turns {
  busy: boolean;
  /** This wrapper paused the socket (for waiting requests), so it resumes it; a pause of Node's own is Node's to undo. */
  paused: boolean;
  waiting: Array<[http.IncomingMessage, http.ServerResponse]>;
}

/**
 * Serves the requests of one HTTP/1.1 connection one at a time. Node parses every
 * pipelined request it has read and would start them all, each building its whole
 * response in memory behind the first: a client that writes hundreds of requests and
 * never reads made the server buffer thousands of times what it sent. Here the next
 * request starts only when the previous response has finished and the socket has
 * drained it (the client is reading), and the socket stops reading while a request
 * waits, so what one connection costs is one response and one read of requests.
 *
 * A connection with nothing waiting keeps reading, so that a client closing a long
 * response (a Subscribe) is noticed at once.
 */
export function serveInTurn(handler: Handler): Handler {
  const connections = new WeakMap<net.Socket, Turns>();
  return (req, res) => {
    const socket = req.socket;
    let turns = connections.get(socket);
    if (!turns) {
      const created: Turns = { busy: false, paused: false, waiting: [] };
      turns = created;
      connections.set(socket, created);
      // Node resumes a socket it paused itself once the socket drains; requests still
      // waiting here mean it must stay paused until their turn.
      socket.on("resume", () => {
        if (created.waiting.length > 0) socket.pause();
      });
    }
    if (turns.busy) {
      turns.waiting.push([req, res]);
      turns.paused = true;
      socket.pause();
      return;
    }
    serve(socket, turns, req, res, handler);
  };
}

function serve(socket: net.Socket, turns: Turns, req: http.IncomingMessage, res: http.ServerResponse, handler: Handler): void {
  turns.busy = true;
  let done = false;
  const next = () => {
    if (done) return;
    done = true;
    socket.off("drain", next);
    socket.off("close", next);
    turns.busy = false;
    if (socket.destroyed) {
      turns.waiting.length = 0;
      return;
    }
    const following = turns.waiting.shift();
    if (following) {
      serve(socket, turns, following[0], following[1], handler);
    } else if (turns.paused) {
      turns.paused = false;
      socket.resume();
    }
  };
  let finished = false;
  res.once("finish", () => {
    finished = true;
    // The response is with the socket; its bytes may still wait for the client to read.
    if (socket.writableNeedDrain) {
      socket.once("drain", next);
      socket.once("close", next);
    } else {
      next();
    }
  });
  // Also emitted after "finish"; alone, it means the response was abandoned.
  res.once("close", () => {
    if (!finished) next();
  });
  handler(req, res);
}
