/**
 * An HTTP/1.1 response read off a raw socket: the status line and headers, then the
 * body (chunked, by Content-Length, or up to the close). The slow-consumer load needs a
 * raw socket, since what it measures is a client that stops reading: `socket.pause()`
 * leaves the bytes in the kernel, where node:http would keep reading into its own
 * buffers.
 */

const HEAD_END = "\r\n\r\n";
/** A response head longer than this is not one the server would send. */
const MAX_HEAD_BYTES = 64 * 1024;

export interface ResponseEvents {
  head(status: number, headers: Map<string, string>): void;
  body(chunk: Buffer): void;
  /** The body ended as its framing says (the last chunk, or all of Content-Length). */
  complete(): void;
}

export class Http1ResponseReader {
  private head: Buffer | undefined = Buffer.alloc(0);
  private framing: "chunked" | "length" | "close" = "close";
  /** Body bytes left: of the current chunk, or of Content-Length. */
  private left = 0;
  private chunkState: "size" | "data" | "data-end" | "trailers" | "done" = "size";
  private line = "";

  constructor(private readonly events: ResponseEvents) {}

  get completed(): boolean {
    return this.chunkState === "done";
  }

  push(chunk: Buffer): void {
    if (this.head !== undefined) {
      const head = Buffer.concat([this.head, chunk]);
      const end = head.indexOf(HEAD_END);
      if (end < 0) {
        if (head.length > MAX_HEAD_BYTES) throw new Error("response head too long");
        this.head = head;
        return;
      }
      this.head = undefined;
      this.readHead(head.subarray(0, end).toString("latin1"));
      chunk = head.subarray(end + HEAD_END.length);
    }
    if (this.framing === "chunked") this.readChunked(chunk);
    else if (this.framing === "length") this.readLength(chunk);
    else if (chunk.length > 0) this.events.body(chunk);
  }

  private readHead(text: string): void {
    const [statusLine, ...lines] = text.split("\r\n");
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? NaN);
    const headers = new Map<string, string>();
    for (const line of lines) {
      const colon = line.indexOf(":");
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    if (/chunked/i.test(headers.get("transfer-encoding") ?? "")) this.framing = "chunked";
    else if (headers.has("content-length")) {
      this.framing = "length";
      this.left = Number(headers.get("content-length"));
    }
    this.events.head(status, headers);
    if (this.framing === "length" && this.left === 0) this.finish();
  }

  private readLength(chunk: Buffer): void {
    const n = Math.min(this.left, chunk.length);
    if (n > 0) this.events.body(chunk.subarray(0, n));
    this.left -= n;
    if (this.left === 0) this.finish();
  }

  private readChunked(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && this.chunkState !== "done") {
      if (this.chunkState === "data") {
        const n = Math.min(this.left, chunk.length - at);
        this.events.body(chunk.subarray(at, at + n));
        at += n;
        this.left -= n;
        if (this.left === 0) this.chunkState = "data-end";
        continue;
      }
      // Size lines, the CRLF after each chunk and the trailers are read line by line.
      const newline = chunk.indexOf(0x0a, at);
      if (newline < 0) {
        this.line += chunk.subarray(at).toString("latin1");
        return;
      }
      const line = (this.line + chunk.subarray(at, newline).toString("latin1")).replace(/\r$/, "");
      this.line = "";
      at = newline + 1;
      if (this.chunkState === "data-end") {
        this.chunkState = "size";
      } else if (this.chunkState === "size") {
        this.left = parseInt(line, 16);
        if (!Number.isFinite(this.left)) throw new Error(`bad chunk size line: ${line}`);
        this.chunkState = this.left === 0 ? "trailers" : "data";
      } else if (line === "") {
        this.finish();
      }
    }
  }

  private finish(): void {
    this.chunkState = "done";
    this.events.complete();
  }
}
