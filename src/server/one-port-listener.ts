import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import type { Duplex } from "node:stream";
import { ErrorCode, StreamError } from "../core/errors.js";
import type { ConnectionLimits } from "./connection-limits.js";
import { OpenFileWatch } from "./open-file-limit.js";
import { serveInTurn } from "./pipelining.js";
import { ALPN_PROTOCOLS, type TlsOptions } from "./tls-context.js";

type Http1Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;
type Http2Handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;

export interface OnePortHandlers {
  /** Plain HTTP/1.1 requests. */
  http1: Http1Handler;
  /** HTTP/2 (h2c) requests: gRPC, and Connect over HTTP/2. */
  http2: Http2Handler;
  /** HTTP/1.1 upgrades (the WebSocket bridge). */
  upgrade: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;
  /**
   * Sees each HTTP/2 stream before Node's compatibility layer makes a request and a
   * response of it for `http2`; returns true for a stream it serves itself.
   */
  http2Stream?: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => boolean;
}

/** The HTTP/2 connection preface; anything else on a new connection is HTTP/1.1. */
const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * Connections the kernel may hold completed but not yet accepted. Node's 511 drops the
 * handshakes of a burst (a few thousand clients reconnecting after a restart), which
 * then retry only after 1 to 7 s of SYN backoff; 4096 takes such a burst. Linux caps it
 * at net.core.somaxconn (4096 on current kernels).
 */
const LISTEN_BACKLOG = 4096;

/** What the listener counts, for stats and for tests of the caps. */
export interface ConnectionStats {
  /** Connections open now. */
  open: number;
  /** Connections refused by a cap since the start. */
  refused: number;
  /** Bytes written to sockets and not yet taken by the kernel, over every connection. */
  bufferedBytes: number;
}

/**
 * One TCP port for HTTP/1.1 and HTTP/2: each new connection goes to one of two Node
 * servers by its first bytes. With a certificate every connection is TLS first (ALPN
 * offers `h2` and `http/1.1`): h2 goes to HTTP/2, anything else is decided by its
 * decrypted first bytes; without one, HTTP/2 is cleartext (h2c). It tracks every connection and HTTP/2 session
 * so that `close()` can end them gracefully, then for good, and it enforces the
 * connection limits (see ConnectionLimits) on TLS connections too, handshake included.
 */
export class OnePortListener {
  private readonly http1: http.Server;
  private readonly http2: http2.Http2Server;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  /** The TLS connections over (some of) `sockets`, whose buffers hold what is not yet encrypted. */
  private readonly secureSockets = new Set<tls.TLSSocket>();
  private readonly tlsServer: tls.Server | undefined;
  /** What ends the first-bytes timeout of each connection in its TLS handshake, by peerKey. */
  private readonly handshaking = new Map<string, () => void>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly perAddress = new Map<string, number>();
  private refused = 0;
  /** Refusing connections at the cap: warned once, again after the count fell below 90% of it. */
  private atCap = false;
  private readonly files: OpenFileWatch;
  private listening = false;
  private closing = false;

  constructor(
    handlers: OnePortHandlers,
    private readonly limits: ConnectionLimits,
    http2Settings: http2.Settings = {},
    /** Where the listener says what it cannot tell a client: the cap reached, descriptors running out. */
    private readonly warn: (message: string) => void = () => undefined,
    secure?: TlsOptions,
  ) {
    this.files = new OpenFileWatch(warn);
    const { headersTimeoutMs, requestTimeoutMs } = limits;
    const shortest = Math.min(...[headersTimeoutMs, requestTimeoutMs].filter((ms) => ms > 0));
    this.http1 = http.createServer(
      {
        headersTimeout: headersTimeoutMs,
        requestTimeout: requestTimeoutMs,
        keepAliveTimeout: limits.keepAliveTimeoutMs,
        // How late a headers or request timeout may fire; Node's 30 s would double a short one.
        connectionsCheckingInterval: Number.isFinite(shortest) ? Math.max(10, Math.min(1000, Math.floor(shortest / 4))) : 30_000,
      },
      serveInTurn(handlers.http1),
    );
    // Node checks headers and request timeouts only for connections it tracks, and it
    // starts tracking when its server emits "listening". This server never listens
    // itself (connections come from the one-port listener), so it is told to here,
    // before any connection: without it slowloris headers and bodies are held forever.
    this.http1.emit("listening");
    this.http2 = http2.createServer({ settings: http2Settings }, handlers.http2);
    if (handlers.http2Stream) takeStreamsFirst(this.http2, handlers.http2Stream);
    this.http1.on("upgrade", handlers.upgrade);
    this.http2.on("session", (session) => {
      this.sessions.add(session);
      session.once("close", () => this.sessions.delete(session));
      this.closeWhenIdle(session);
    });
    // As node:http's own servers do: HTTP/1.1 responses and streams are written when
    // ready, and Nagle's algorithm would hold a small write behind an unacknowledged one
    // (tens of ms against delayed ACKs). HTTP/2 sessions and ws set it themselves.
    this.server = net.createServer({ noDelay: true }, (socket) => this.route(socket));
    // Like the two HTTP servers, it never listens: the one-port listener hands it each
    // TCP connection, and it hands back the decrypted one once the handshake is done.
    this.tlsServer =
      secure &&
      tls.createServer(
        { cert: secure.cert, key: secure.key, ALPNProtocols: ALPN_PROTOCOLS },
        (tlsSocket) => {
          const key = peerKey(tlsSocket);
          const started = this.handshaking.get(key) ?? (() => undefined);
          this.handshaking.delete(key);
          this.secureSockets.add(tlsSocket);
          tlsSocket.once("close", () => this.secureSockets.delete(tlsSocket));
          this.dispatch(tlsSocket, tlsSocket.alpnProtocol === "h2", started);
        },
      );
  }

  /** The port bound, once listening. */
  get port(): number | undefined {
    const address = this.server.address();
    return typeof address === "object" && address ? address.port : undefined;
  }

  /** What the listener counts now. */
  stats(): ConnectionStats {
    let bufferedBytes = 0;
    for (const socket of [...this.sockets, ...this.secureSockets]) bufferedBytes += socket.writableLength;
    return { open: this.sockets.size, refused: this.refused, bufferedBytes };
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
      this.server.listen({ port, host, backlog: LISTEN_BACKLOG });
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
    this.files.stop();
    // Stops Node's timeout checker, started in the constructor.
    this.http1.close();
  }

  /**
   * Counts a new connection against the caps, then hands it to the HTTP/2 or the
   * HTTP/1.1 server (through TLS first, when the port is secure).
   */
  private route(socket: net.Socket): void {
    const address = socket.remoteAddress ?? "";
    const fromAddress = this.perAddress.get(address) ?? 0;
    if (this.closing || this.sockets.size >= this.limits.maxConnections || fromAddress >= this.limits.maxConnectionsPerAddress) {
      // At once and without an answer: an answer would cost what the cap is there to save.
      if (!this.closing) this.refused++;
      if (!this.closing && !this.atCap && this.sockets.size >= this.limits.maxConnections) {
        this.atCap = true;
        this.warn(`${this.sockets.size} connections are open, the most max_connections allows: new connections are refused until some close`);
      }
      socket.destroy();
      return;
    }
    // Until the HTTP/2 or HTTP/1.1 server takes it over, a reset (a client gone before its
    // first bytes) has no other listener, and an unheard error would end the process.
    socket.on("error", () => socket.destroy());
    this.sockets.add(socket);
    this.perAddress.set(address, fromAddress + 1);
    this.files.check(this.sockets.size);
    socket.once("close", () => {
      this.sockets.delete(socket);
      const left = (this.perAddress.get(address) ?? 1) - 1;
      if (left > 0) this.perAddress.set(address, left);
      else this.perAddress.delete(address);
      if (this.atCap && this.sockets.size < this.limits.maxConnections * 0.9) this.atCap = false;
      this.files.check(this.sockets.size);
    });
    // The handshake counts as first bytes: a connection that never completes it goes too.
    const firstBytesTimer =
      this.limits.firstBytesTimeoutMs > 0 ? setTimeout(() => socket.destroy(), this.limits.firstBytesTimeoutMs).unref() : undefined;
    const started = () => clearTimeout(firstBytesTimer);
    socket.once("close", started);
    if (!this.tlsServer) return this.dispatch(socket, false, started);
    // The TLS server hands back the decrypted connection, with the same remote address and port.
    const key = peerKey(socket);
    this.handshaking.set(key, started);
    socket.once("close", () => this.handshaking.delete(key));
    this.tlsServer.emit("connection", socket);
  }

  /**
   * Hands a connection, cleartext or decrypted, to the HTTP/2 server (when ALPN chose h2,
   * or by the preface) or to the HTTP/1.1 server, within the first-bytes timeout.
   */
  private dispatch(socket: net.Socket, alpnHttp2: boolean, started: () => void): void {
    const toHttp2 = () => {
      // The session's first SETTINGS follow the preface: until they arrive, the
      // connection has not started.
      this.http2.once("session", (session) => session.once("remoteSettings", started));
      this.http2.emit("connection", socket);
    };
    if (alpnHttp2) return toHttp2();

    // Until a server takes the connection, nothing else listens for its errors: a reset ends it.
    const onError = () => socket.destroy();
    socket.on("error", onError);
    let head: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const length = Math.min(head.length, HTTP2_PREFACE.length);
      const isHttp2 = head.subarray(0, length).equals(HTTP2_PREFACE.subarray(0, length));
      // A client that sends its preface in pieces is still deciding; wait for the rest.
      if (isHttp2 && head.length < HTTP2_PREFACE.length) return;
      socket.off("data", onData);
      socket.off("error", onError);
      socket.pause();
      socket.unshift(head);
      if (isHttp2) {
        // The session takes the unshifted bytes over itself; resuming the socket here
        // would make it read them twice.
        toHttp2();
      } else {
        // From its first byte on, a request is bounded by the headers and request timeouts.
        started();
        this.http1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
  }

  /** Closes an HTTP/2 session that has had no open stream for the idle timeout. */
  private closeWhenIdle(session: http2.ServerHttp2Session): void {
    const idleMs = this.limits.http2IdleTimeoutMs;
    if (idleMs <= 0) return;
    let open = 0;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      timer = setTimeout(() => session.close(), idleMs).unref();
    };
    session.on("stream", (stream) => {
      open++;
      clearTimeout(timer);
      stream.once("close", () => {
        open--;
        if (open === 0 && !session.closed && !session.destroyed) arm();
      });
    });
    session.once("close", () => clearTimeout(timer));
    arm();
  }
}

/**
 * Puts `raw` in front of the server's compatibility layer, which is the server's own
 * "stream" listener (Node adds it with the "request" listener): each stream goes to
 * `raw` first, and to that layer only when `raw` declines it. Where Node has no such
 * listener, nothing changes and every stream goes through the compatibility layer.
 */
function takeStreamsFirst(server: http2.Http2Server, raw: NonNullable<OnePortHandlers["http2Stream"]>): void {
  const compatibility = server.listeners("stream") as Array<(...args: unknown[]) => void>;
  if (compatibility.length === 0) return;
  server.removeAllListeners("stream");
  server.on("stream", function (this: http2.Http2Server, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, ...rest: unknown[]) {
    if (raw(stream, headers)) return;
    for (const listener of compatibility) listener.call(this, stream, headers, ...rest);
  });
}

/** A connection's remote address and port: unique among open connections, and the same on its TLS socket. */
function peerKey(socket: net.Socket): string {
  return `${socket.remoteAddress ?? ""}|${socket.remotePort ?? ""}`;
}
