/**
 * Subscribe over HTTP/1.1 with Connect's JSON streaming, on a raw socket, one per
 * subscriber. `socket.pause()` stops reading from the kernel: the socket's receive
 * buffer, then the server's send buffer fill, and the server must keep or drop the
 * rest. Such a client cannot receive anything, not even a status, until it reads again;
 * a server that cut it meanwhile shows up as a connection that ends without an
 * end-of-stream frame.
 */
import net from "node:net";
import { Http1ResponseReader } from "./http1-response.js";
import { SubscribeFrameReader } from "./subscribe-frames.js";
import { connectEnding, StallingBase, type StallingOptions } from "./stalling-subscriber.js";
import { STREAM_NAME } from "./transports/transport.js";

const SUBSCRIBE_PATH = "/iii.stream.v1.StreamService/Subscribe";

function request(url: URL, groupId: string): Buffer {
  const body = Buffer.from(JSON.stringify({ streamName: STREAM_NAME, groupId }));
  const envelope = Buffer.alloc(5 + body.length);
  envelope.writeUInt32BE(body.length, 1);
  envelope.set(body, 5);
  const head =
    `POST ${SUBSCRIBE_PATH} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/connect+json\r\n` +
    `Connect-Protocol-Version: 1\r\nContent-Length: ${envelope.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), envelope]);
}

export class StallingHttp1Subscriber extends StallingBase {
  private readonly socket: net.Socket;
  private bytes = 0;

  constructor(url: string, groupId: string, options: StallingOptions) {
    super(options);
    const target = new URL(url);
    const frames = new SubscribeFrameReader(false, {
      message: (kind, bytes) => {
        this.markJoined();
        if (kind !== "snapshot") this.received(bytes);
      },
      end: (text) => {
        const { ending, detail } = connectEnding(text);
        this.ended(ending, detail, text);
      },
    });
    const response = new Http1ResponseReader({
      head: (status) => {
        if (status !== 200) this.ended(`HTTP ${status}`, `the server answered ${status}`);
      },
      body: (chunk) => frames.push(chunk),
      complete: () => this.ended("closed without status", "the response ended without an end-of-stream frame"),
    });
    this.socket = net.connect(Number(target.port), target.hostname, () => this.socket.write(request(target, groupId)));
    this.socket.on("data", (chunk: Buffer) => {
      this.bytes += chunk.length;
      response.push(chunk);
    });
    this.socket.on("end", () => this.ended("cut", `the server closed the connection after ${this.bytes} bytes, without an end-of-stream frame`));
    this.socket.on("error", (error: NodeJS.ErrnoException) => this.ended("cut", `${error.code ?? error.message} after ${this.bytes} bytes, without an end-of-stream frame`));
    this.socket.on("close", () => this.ended("cut", `the connection closed after ${this.bytes} bytes, without an end-of-stream frame`));
  }

  protected pauseReading(): void {
    this.socket.pause();
  }

  protected resumeReading(): void {
    this.socket.resume();
  }

  protected disconnect(): void {
    this.socket.destroy();
  }
}
