import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { Duplex } from "node:stream";
import { ErrorCode, StreamError } from "../core/errors.js";

type Http1Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;
type Http2Handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;

export interface OnePortHandlers {
  /** Plain HTTP/1.1 requests. */
  http1: Http1Handler;
  /** HTTP/2 (h2c) requests: gRPC, and Connect over HTTP/2. */
  http2: Http2Handler;
  /** HTTP/1.1 upgrades (the WebSocket bridge). */
  upgrade: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;
}

/** The HTTP/2 connection preface; anything else on a new connection is HTTP/1.1. */
const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * One TCP port for HTTP/1.1 and cleartext HTTP/2: each new connection goes to one of
 * two Node servers by its first bytes. It tracks every connection and HTTP/2 session
 * so that `close()` can end them gracefully, then for good.
 */
export class OnePortListener {
  private readonly http1: http.Server;
  private readonly http2: http2.Http2Server;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private listening = false;
  private closing = false;

  constructor(handlers: OnePortHandlers, http2Settings: http2.Settings = {}) {
    this.http1 = http.createServer(handlers.http1);
    this.http2 = http2.createServer({ settings: http2Settings }, handlers.http2);
    this.http1.on("upgrade", handlers.upgrade);
    this.http2.on("session", (session) => {
      this.sessions.add(session);
      session.once("close", () => this.sessions.delete(session));
    });
    // As node:http's own servers do: HTTP/1.1 responses and streams are written when
    // ready, and Nagle's algorithm would hold a small write behind an unacknowledged one
    // (tens of ms against delayed ACKs). HTTP/2 sessions and ws set it themselves.
    this.server = net.createServer({ noDelay: true }, (socket) => this.route(socket));
  }

  /** The port bound, once listening. */
  get port(): number | undefined {
    const address = this.server.address();
    return typeof address === "object" && address ? address.port : undefined;
  }

  /** Binds the port; a failure names the address, and says so plainly when it is taken. */
  listen(port: number, host: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        this.server.off("listening", onListening);
        if (error.code === "EADDRINUSE") {
          reject(new StreamError(ErrorCode.Unavailable, `cannot listen on ${host}:${port}: the address is already in use`));
        } else {
          reject(new StreamError(ErrorCode.Unavailable, `cannot listen on ${host}:${port}: ${error.message}`));
        }
      };
      const onListening = () => {
        this.server.off("error", onError);
        this.listening = true;
        resolve();
      };
      this.server.once("error", onError);
      this.server.once("listening", onListening);
      this.server.listen(port, host);
    });
  }

  /**
   * Stops accepting connections, runs `endStreams` (which ends the long-lived calls
   * and sockets on the connections still open), asks HTTP/2 sessions to finish and
   * idle HTTP/1.1 connections to close, and after `graceMs` destroys whatever is still
   * open. Resolves when every connection is gone.
   */
  async close(graceMs: number, endStreams: () => void): Promise<void> {
    this.closing = true;
    const closed = this.listening ? new Promise<void>((resolve) => this.server.close(() => resolve())) : Promise.resolve();
    endStreams();
    for (const session of this.sessions) session.close();
    this.http1.closeIdleConnections();
    // These timers stay referenced: a process waiting for its own shutdown must not
    // see an empty event loop and exit before it has finished.
    const deadline = setTimeout(() => {
      for (const socket of this.sockets) socket.destroy();
    }, graceMs);
    const drained = new Promise<void>((resolve) => {
      const check = () => (this.sockets.size === 0 ? resolve() : setTimeout(check, 20));
      check();
    });
    await Promise.all([closed, drained]);
    clearTimeout(deadline);
  }

  /** Hands a new connection to the HTTP/2 or the HTTP/1.1 server by its first bytes. */
  private route(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    if (this.closing) {
      socket.destroy();
      return;
    }
    const firstBytes = (chunk: Buffer) => {
      socket.pause();
      socket.unshift(chunk);
      const length = Math.min(chunk.length, HTTP2_PREFACE.length);
      const isHttp2 = chunk.subarray(0, length).equals(HTTP2_PREFACE.subarray(0, length));
      if (isHttp2) {
        // The HTTP/2 session takes the unshifted bytes over itself; resuming the
        // socket here would make it read them twice.
        this.http2.emit("connection", socket);
      } else {
        this.http1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.once("data", firstBytes);
  }
}
