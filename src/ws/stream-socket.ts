import type { Duplex } from "node:stream";
import type { WebSocket } from "ws";
import type { JsonObject, JsonValue } from "../core/json.js";
import type { StreamEngine } from "../core/engine.js";
import { ErrorCode, StreamError } from "../core/errors.js";
import type { Subscription, SubscriptionTarget } from "../core/subscription.js";
import type { Delivery } from "../core/delivery.js";
import { DeliveryPump, type FrameSink } from "../core/delivery-pump.js";
import type { FlushScheduler } from "../core/flush-scheduler.js";
import type { Metrics, SubscriptionEndReason } from "../core/metrics.js";
import { closingFor, type Closing } from "./close-codes.js";
import { canWriteBeneath, TextFrameBatch, textFrame } from "./text-frame-batch.js";
import {
  errorWrapper,
  parseClientMessage,
  subscriptionSuffix,
  unauthorizedWrapper,
  wrapperHead,
  type JoinMessage,
  type LeaveMessage,
} from "./wire-messages.js";

export interface StreamSocketOptions {
  engine: StreamEngine;
  /** What the auth function said about this connection; stamped into join and leave payloads. */
  context: JsonValue;
  /** Most subscriptions the connection may hold at once. */
  maxSubscriptions: number;
  /** Closes the connection (the bridge owns it). */
  close(closing: Closing): void;
  /** The server's one flush scheduler, shared with Subscribe. */
  scheduler: FlushScheduler;
  /** Where subscriptions and deliveries are counted. Default: nowhere. */
  metrics?: Metrics;
  /** The client's address, for the access log. */
  peer: string;
}

/**
 * Bytes the socket may hold unsent before the connection stops taking messages from
 * its subscriptions. Beyond it, messages wait in each subscription's bounded queue,
 * whose overflow closes the connection (SlowConsumer): memory stays bounded and a
 * slow reader never holds up writers or other readers.
 */
const SEND_HIGH_WATER_BYTES = 256 * 1024;
/** Messages taken from one subscription per round, so one busy group cannot starve the others. */
const TAKE_PER_ROUND = 64;
/** What `ws.send` needs to send a Buffer as a text frame, as the raw path does. */
const AS_TEXT = { binary: false } as const;
/** Client messages waiting to be handled beyond which the connection stops reading. */
const INBOX_LIMIT = 64;

/** The frames of the connection being flushed; flushes run one at a time, so they share it. */
const batch = new TextFrameBatch();

interface Joined {
  readonly clientId: string;
  readonly target: SubscriptionTarget;
  /** Closes every wrapper of this subscription with its id. */
  readonly suffix: Buffer;
  /** Set once the engine has accepted the join. */
  subscription: Subscription | undefined;
}

/**
 * A stream-socket connection as the delivery pump sees it: each delivery becomes the
 * reference's wrapper (its shared head and the subscription's suffix) in a text frame.
 *
 * When `canWriteBeneath` allows it, a flush's frames are built into one buffer and
 * written to the raw socket in one write (see TextFrameBatch); otherwise each goes
 * through `ws.send`, the same message in ws's own (possibly compressed) frame.
 */
class SocketSink implements FrameSink<Joined> {
  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Duplex,
    /** Frames are written beneath ws, whole, in one write per flush. */
    readonly raw: boolean,
  ) {}

  get room(): number {
    if (this.ws.readyState !== this.ws.OPEN) return 0;
    // Raw: only complete frames of our own and of ws reach the socket, so its unsent
    // bytes are all there is. Through ws: what ws still holds (compressing) counts too.
    return SEND_HIGH_WATER_BYTES - (this.raw ? this.socket.writableLength : this.ws.bufferedAmount);
  }

  get buffered(): number {
    return this.raw ? this.socket.writableLength : this.ws.bufferedAmount;
  }

  frame(delivery: Delivery, entry: Joined): number {
    const head = wrapperHead(delivery, entry.target);
    if (head === undefined) return 0;
    if (this.raw) return batch.add(head, entry.suffix);
    this.ws.send(Buffer.concat([head, entry.suffix]), AS_TEXT);
    return head.length + entry.suffix.length;
  }

  write(): boolean {
    if (this.raw) {
      const frames = batch.take();
      if (frames) this.socket.write(frames);
    }
    // Beyond SEND_HIGH_WATER_BYTES (far above the socket's own mark) a write has
    // returned false, so the socket will emit 'drain'. A closing connection takes nothing more.
    return this.ws.readyState === this.ws.OPEN && this.socket.writableLength < SEND_HIGH_WATER_BYTES;
  }

  /** A reply of our own, written the same way as messages so that it keeps its place among them. */
  sendText(text: string): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    if (this.raw) this.socket.write(textFrame(text));
    else this.ws.send(text);
  }

  onDrain(listener: () => void): void {
    this.socket.on("drain", listener);
  }

  offDrain(listener: () => void): void {
    this.socket.off("drain", listener);
  }
}

/**
 * One connection of the stream socket (protocol 1): client-chosen subscription ids,
 * each mapped to an engine subscription, so joins pass the same auth function and
 * `stream:join`/`stream:leave` triggers, the same bounded queues and the same offsets
 * as Subscribe. Client messages are handled one at a time, in order, as in the
 * reference; a re-join with a known id replaces that subscription. Messages go out
 * through a DeliveryPump: round-robin over the subscriptions, one write per flush,
 * nothing taken while the socket holds SEND_HIGH_WATER_BYTES.
 */
export class StreamSocket {
  private readonly joined = new Map<string, Joined>();
  private readonly inbox: Array<JoinMessage | LeaveMessage> = [];
  private readonly sink: SocketSink;
  private readonly pump: DeliveryPump<Joined>;
  private handling = false;
  private disposed = false;

  constructor(
    private readonly ws: WebSocket,
    /** The raw connection under `ws`: where frames are written when ws allows it, and watched for drain. */
    socket: Duplex,
    private readonly options: StreamSocketOptions,
  ) {
    this.sink = new SocketSink(ws, socket, canWriteBeneath(ws, socket));
    this.pump = new DeliveryPump(this.sink, options.scheduler, { takePerRound: TAKE_PER_ROUND, metrics: options.metrics, transport: "stream_socket" });
  }

  /** Whether frames are written beneath ws (the fast path) rather than through `ws.send`. */
  get writesBeneath(): boolean {
    return this.sink.raw;
  }

  /** A client message (already parsed JSON). Anything but a join or a leave is ignored. */
  receive(message: JsonObject): void {
    const parsed = parseClientMessage(message);
    if (parsed) this.enqueue(parsed);
  }

  /** The join a `/stream/{stream}/{group}[/{item}]` URL asks for, under an id the server picks. */
  joinFromPath(join: JoinMessage): void {
    this.enqueue(join);
  }

  /** Ends every subscription (their leave triggers fire) for `reason`; the connection is gone or going. */
  dispose(reason: SubscriptionEndReason = "client"): void {
    if (this.disposed) return;
    this.disposed = true;
    this.inbox.length = 0;
    this.pump.close();
    for (const entry of [...this.joined.values()]) entry.subscription?.end(undefined, reason);
    this.joined.clear();
  }

  private enqueue(message: JoinMessage | LeaveMessage): void {
    if (this.disposed) return;
    this.inbox.push(message);
    if (this.inbox.length >= INBOX_LIMIT) this.ws.pause();
    if (!this.handling) void this.handleInbox();
  }

  private async handleInbox(): Promise<void> {
    this.handling = true;
    try {
      for (let message = this.inbox.shift(); message && !this.disposed; message = this.inbox.shift()) {
        if (message.type === "join") await this.join(message);
        else this.leave(message.subscriptionId);
        if (this.inbox.length === 0) this.ws.resume();
      }
    } finally {
      this.handling = false;
    }
  }

  private async join(join: JoinMessage): Promise<void> {
    this.leave(join.subscriptionId);
    if (this.joined.size >= this.options.maxSubscriptions) {
      this.sink.sendText(errorWrapper(join, ErrorCode.ResourceExhausted, `a connection may hold at most ${this.options.maxSubscriptions} subscriptions`));
      return;
    }
    const entry: Joined = {
      clientId: join.subscriptionId,
      target: { streamName: join.streamName, groupId: join.groupId, itemId: join.itemId },
      suffix: subscriptionSuffix(join.subscriptionId),
      subscription: undefined,
    };
    this.joined.set(entry.clientId, entry);
    let subscription: Subscription;
    try {
      subscription = await this.options.engine.subscribe(
        { streamName: join.streamName, groupId: join.groupId, itemId: join.itemId, fromOffset: join.fromOffset },
        {
          onReadable: this.pump.onReadable,
          context: this.options.context,
          subscriptionId: join.subscriptionId,
          wholeSnapshot: !join.chunks,
          transport: "stream_socket",
          peer: this.options.peer,
        },
      );
    } catch (error) {
      this.forget(entry);
      this.refuse(join, error);
      return;
    }
    if (this.disposed || this.joined.get(entry.clientId) !== entry) {
      subscription.end();
      return;
    }
    entry.subscription = subscription;
    this.pump.add(subscription, entry);
    subscription.onEnd((error) => this.ended(entry, error));
  }

  /** Ends a subscription by its id; its leave triggers fire. An unknown id is ignored. */
  private leave(clientId: string): void {
    const entry = this.joined.get(clientId);
    if (!entry) return;
    this.forget(entry);
    entry.subscription?.end();
  }

  private forget(entry: Joined): void {
    if (this.joined.get(entry.clientId) === entry) this.joined.delete(entry.clientId);
    if (entry.subscription) this.pump.remove(entry.subscription);
  }

  private refuse(join: JoinMessage, error: unknown): void {
    if (this.disposed) return;
    if (error instanceof StreamError && error.code === ErrorCode.PermissionDenied) {
      this.sink.sendText(unauthorizedWrapper(join));
      return;
    }
    const failure = StreamError.from(error);
    this.sink.sendText(errorWrapper(join, failure.code, failure.message));
  }

  /** A subscription the engine ended (slow consumer, lost messages) takes the connection with it. */
  private ended(entry: Joined, error: StreamError | undefined): void {
    this.forget(entry);
    if (error && !this.disposed) this.options.close(closingFor(error));
  }
}
