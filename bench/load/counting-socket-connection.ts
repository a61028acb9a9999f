import { WebSocket } from "ws";
import type { CountingConnection, SampleSink, SampleSlot } from "./counting-connection.js";
import { STREAM_NAME } from "./transports/transport.js";

interface Wrapper {
  subscriptionId?: string;
  event?: { type?: string; data?: { i?: unknown; t?: unknown } };
}

let nextConnection = 0;

/**
 * One stream socket holding several joins of one group, told apart by their
 * `subscriptionId`; see counting-connection.ts for what is decoded. Once every join
 * was answered, only the sampled subscription's messages are parsed, found by the
 * `"subscriptionId":"..."}` every message of it ends with. UTF-8 is not validated:
 * the bytes are counted, not read.
 */
export class CountingSocketConnection implements CountingConnection {
  readonly settled: Promise<void>;
  joinedCount = 0;
  lost = 0;
  bytes = 0;
  private readonly socket: WebSocket;
  private readonly waiting = new Set<string>();
  private settle!: () => void;
  private closed = false;

  constructor(url: string, groupId: string, joins: number, slot: SampleSlot | undefined, sink: SampleSink) {
    this.settled = new Promise<void>((resolve) => (this.settle = resolve));
    const connection = nextConnection++;
    const ids = Array.from({ length: joins }, (_, position) => `c${connection}-${position}`);
    for (const id of ids) this.waiting.add(id);
    const sampledId = slot === undefined ? undefined : ids[slot.position];
    const suffix = sampledId === undefined ? undefined : Buffer.from(`"subscriptionId":${JSON.stringify(sampledId)}}`);
    this.socket = new WebSocket(`${url.replace(/^http/, "ws")}/`, { perMessageDeflate: false, skipUTF8Validation: true });
    this.socket.on("open", () => {
      for (const subscriptionId of ids) {
        this.socket.send(JSON.stringify({ type: "join", data: { subscriptionId, streamName: STREAM_NAME, groupId } }));
      }
    });
    this.socket.on("message", (data: Buffer) => {
      this.bytes += data.length;
      if (this.waiting.size > 0) this.answer(JSON.parse(data.toString()) as Wrapper);
      else if (suffix !== undefined && slot !== undefined && endsWith(data, suffix)) {
        const event = (JSON.parse(data.toString()) as Wrapper).event;
        const { i, t } = event?.data ?? {};
        if (typeof i === "number" && typeof t === "number") sink.onChange(slot.sample, i, t);
      }
    });
    this.socket.on("error", () => undefined);
    this.socket.on("close", () => {
      if (!this.closed) this.lost += this.joinedCount;
      this.waiting.clear();
      this.settle();
    });
  }

  close(): void {
    this.closed = true;
    this.socket.terminate();
  }

  /** A message that may answer a join: a `sync` joins it, an `error` or `unauthorized` refuses it. */
  private answer(wrapper: Wrapper): void {
    const id = wrapper.subscriptionId;
    const type = wrapper.event?.type;
    if (id === undefined || !this.waiting.has(id)) return;
    if (type === "sync") this.joinedCount++;
    else if (type !== "error" && type !== "unauthorized") return;
    this.waiting.delete(id);
    if (this.waiting.size === 0) this.settle();
  }
}

function endsWith(data: Buffer, suffix: Buffer): boolean {
  return data.length >= suffix.length && data.compare(suffix, 0, suffix.length, data.length - suffix.length) === 0;
}
