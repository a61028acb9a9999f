/**
 * Reads a Subscribe response body (Connect or gRPC streaming envelopes) as it arrives,
 * without holding whole messages: an old server sends a 100,000-item group as one
 * ~100 MB Snapshot, and a hundred subscribers buffering theirs would measure the load
 * process's memory instead of the server's. Binary messages are scanned field by field
 * (items are counted and skipped, never decoded); JSON messages (Connect over HTTP/1.1)
 * are small in the loads that use them and are buffered.
 */

/** The `message` oneof of SubscribeResponse, by field number. */
const KINDS = ["unknown", "snapshot", "change", "event", "heartbeat"] as const;
export type MessageKind = (typeof KINDS)[number];

export interface SnapshotPart {
  items: number;
  offset: number;
  more: boolean;
}

export interface FrameEvents {
  /** A message; `bytes` counts its envelope. `snapshot` is set for a Snapshot. */
  message(kind: MessageKind, bytes: number, snapshot: SnapshotPart | undefined): void;
  /** The Connect end-of-stream frame (or gRPC-Web trailer frame), as text. */
  end(text: string): void;
}

const ENVELOPE_HEADER = 5;
/** Connect end-of-stream, and gRPC-Web trailers: neither is a message. */
const END_FLAGS = 0x02 | 0x80;
const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;
/** A field's tag and length (or varint value) take at most this many bytes. */
const MAX_FIELD_HEADER = 20;

interface FieldHeader {
  field: number;
  wire: number;
  /** The varint's value, or the length of a length-delimited field. */
  value: number;
  size: number;
}

export class SubscribeFrameReader {
  /** Unparsed bytes: less than an envelope header or a field header. */
  private pending: Buffer | undefined;
  /** Bytes to pass over before parsing resumes (an item, an unneeded field). */
  private skip = 0;
  private state: "envelope" | "message" | "collect" = "envelope";
  /** Bytes of the current message not yet parsed or skipped. */
  private messageLeft = 0;
  private messageBytes = 0;
  private kind = 0;
  /** Bytes of the Snapshot inside the current message not yet parsed or skipped; undefined outside one. */
  private snapshotLeft: number | undefined;
  private snapshot: SnapshotPart | undefined;
  /** JSON bodies and end-of-stream frames are collected whole. */
  private collected: Buffer[] = [];
  private collectLeft = 0;
  /** Whether the frame being collected ends the stream (else it is a JSON message). */
  private isEndFrame = false;

  constructor(
    private readonly binary: boolean,
    private readonly events: FrameEvents,
  ) {}

  push(chunk: Buffer): void {
    const buffer = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = undefined;
    let at = 0;
    while (at < buffer.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, buffer.length - at);
        at += n;
        this.skip -= n;
        continue;
      }
      if (this.state === "envelope") {
        if (buffer.length - at < ENVELOPE_HEADER) break;
        const flags = buffer[at];
        const length = buffer.readUInt32BE(at + 1);
        at += ENVELOPE_HEADER;
        this.messageBytes = ENVELOPE_HEADER + length;
        if ((flags & END_FLAGS) !== 0 || !this.binary) {
          this.state = "collect";
          this.collected = [];
          this.collectLeft = length;
          this.isEndFrame = (flags & END_FLAGS) !== 0;
          if (length === 0) this.finishCollected();
          continue;
        }
        this.state = "message";
        this.messageLeft = length;
        this.kind = 0;
        this.snapshot = undefined;
        this.snapshotLeft = undefined;
        if (length === 0) this.finishMessage();
        continue;
      }
      if (this.state === "collect") {
        const n = Math.min(this.collectLeft, buffer.length - at);
        this.collected.push(buffer.subarray(at, at + n));
        at += n;
        this.collectLeft -= n;
        if (this.collectLeft === 0) this.finishCollected();
        continue;
      }
      const parsed = this.parseField(buffer, at);
      if (parsed === undefined) break;
      at = parsed;
    }
    if (at < buffer.length) this.pending = Buffer.from(buffer.subarray(at));
  }

  /** Parses one field of the message (or of its Snapshot) at `at`; returns where parsing goes on, or undefined for more bytes. */
  private parseField(buffer: Buffer, at: number): number | undefined {
    const inSnapshot = this.snapshotLeft !== undefined;
    const left = inSnapshot ? this.snapshotLeft! : this.messageLeft;
    const header = readFieldHeader(buffer, at, Math.min(buffer.length, at + left));
    if (header === undefined) {
      if (buffer.length - at >= Math.min(left, MAX_FIELD_HEADER)) throw new Error("malformed Subscribe message");
      return undefined;
    }
    this.consume(header.size);
    const body = header.wire === WIRE_LEN ? header.value : header.wire === WIRE_FIXED64 ? 8 : header.wire === WIRE_FIXED32 ? 4 : 0;
    if (!inSnapshot) {
      if (this.kind === 0) this.kind = header.field;
      if (header.field === 1 && header.wire === WIRE_LEN) {
        this.snapshot = { items: 0, offset: 0, more: false };
        this.snapshotLeft = header.value;
        this.afterField();
        return at + header.size;
      }
    } else if (header.field === 1 && header.wire === WIRE_LEN) {
      this.snapshot!.items++;
    } else if (header.field === 2 && header.wire === WIRE_VARINT) {
      this.snapshot!.offset = header.value;
    } else if (header.field === 3 && header.wire === WIRE_VARINT) {
      this.snapshot!.more = header.value !== 0;
    }
    this.consume(body);
    this.skip = body;
    this.afterField();
    return at + header.size;
  }

  private consume(bytes: number): void {
    this.messageLeft -= bytes;
    if (this.snapshotLeft !== undefined) this.snapshotLeft -= bytes;
  }

  /** Closes the Snapshot and the message once their bytes are all accounted for (skipped bytes are counted when the skip is set). */
  private afterField(): void {
    if (this.snapshotLeft === 0) this.snapshotLeft = undefined;
    if (this.messageLeft === 0) this.finishMessage();
  }

  private finishMessage(): void {
    this.state = "envelope";
    this.events.message(KINDS[this.kind] ?? "unknown", this.messageBytes, this.snapshot);
  }

  private finishCollected(): void {
    this.state = "envelope";
    const text = Buffer.concat(this.collected).toString("utf8");
    this.collected = [];
    if (this.isEndFrame) {
      this.events.end(text);
      return;
    }
    // JSON: the first key is the oneof's case.
    const key = /^\s*\{\s*"(\w+)"/.exec(text)?.[1];
    const kind = (KINDS as readonly string[]).includes(key ?? "") ? (key as MessageKind) : "unknown";
    let snapshot: SnapshotPart | undefined;
    if (kind === "snapshot") {
      const value = (JSON.parse(text) as { snapshot: { items?: unknown[]; offset?: string | number; more?: boolean } }).snapshot;
      snapshot = { items: value.items?.length ?? 0, offset: Number(value.offset ?? 0), more: value.more === true };
    }
    this.events.message(kind, this.messageBytes, snapshot);
  }
}

/** A protobuf field's tag and varint (value or length), or undefined when `end` comes first. */
function readFieldHeader(buffer: Buffer, at: number, end: number): FieldHeader | undefined {
  const tag = readVarint(buffer, at, end);
  if (tag === undefined) return undefined;
  const wire = tag.value % 8;
  const field = Math.floor(tag.value / 8);
  if (wire !== WIRE_VARINT && wire !== WIRE_LEN) return { field, wire, value: 0, size: tag.size };
  const value = readVarint(buffer, at + tag.size, end);
  if (value === undefined) return undefined;
  return { field, wire, value: value.value, size: tag.size + value.size };
}

function readVarint(buffer: Buffer, at: number, end: number): { value: number; size: number } | undefined {
  let value = 0;
  for (let i = 0; i < 10 && at + i < end; i++) {
    const byte = buffer[at + i];
    value += (byte & 0x7f) * 2 ** (7 * i);
    if (byte < 0x80) return { value, size: i + 1 };
  }
  return undefined;
}
