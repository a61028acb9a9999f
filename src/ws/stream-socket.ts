import type { Duplex } from "node:stream";
import type { WebSocket } from "ws";
import type { JsonObject, JsonValue } from "../core/json.js";
import type { StreamEngine } from "../core/engine.js";
import { ErrorCode, StreamError } from "../core/errors.js";
import type { Subscription, SubscriptionTarget } from "../core/subscription.js";
import { FlushScheduler, type Flushable } from "../core/flush-scheduler.js";
import { closingFor, type Closing } from "./close-codes.js";
import { TextFrameBatch, textFrame } from "./text-frame-batch.js";
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
/** Client messages waiting to be handled beyond which the connection stops reading. */
const INBOX_LIMIT = 64;

/** Every stream socket flushes from one timer per event-loop turn: a delivery costs no closure or timer of its own. */
const flushes = new FlushScheduler();
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
 * One connection of the stream socket (protocol 1): client-chosen subscription ids,
 * each mapped to an engine subscription, so joins pass the same auth function and
 * `stream:join`/`stream:leave` triggers, the same bounded queues and the same offsets
 * as Subscribe. Client messages are handled one at a time, in order, as in the
 * reference; a re-join with a known id replaces that subscription.
 */
export class StreamSocket implements Flushable {
  private readonly joined = new Map<string, Joined>();
  /** The joined entries the engine accepted, in join order: what a flush walks, without an iterator. */
  private readonly streaming: Joined[] = [];
  private readonly inbox: Array<JoinMessage | LeaveMessage> = [];
  private handling = false;
  private flushScheduled = false;
  private waitingForDrain = false;
  private disposed = false;

  constructor(
    private readonly ws: WebSocket,
    /** The raw connection under `ws`: messages are written to it as whole frames (see TextFrameBatch), and it is watched for drain. */
    private readonly socket: Duplex,
    private readonly options: StreamSocketOptions,
  ) {}

  /** A client message (already parsed JSON). Anything but a join or a leave is ignored. */
  receive(message: JsonObject): void {
    const parsed = parseClientMessage(message);
    if (parsed) this.enqueue(parsed);
  }

  /** The join a `/stream/{stream}/{group}[/{item}]` URL asks for, under an id the server picks. */
  joinFromPath(join: JoinMessage): void {
    this.enqueue(join);
  }

  /** Ends every subscription (their leave triggers fire); the connection is gone or going. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.inbox.length = 0;
    for (const entry of [...this.joined.values()]) entry.subscription?.end();
    this.joined.clear();
    this.streaming.length = 0;
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
      this.sendText(errorWrapper(join, ErrorCode.ResourceExhausted, `a connection may hold at most ${this.options.maxSubscriptions} subscriptions`));
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
        { onReadable: () => this.scheduleFlush(), context: this.options.context, subscriptionId: join.subscriptionId },
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
    this.streaming.push(entry);
    subscription.onEnd((error) => this.ended(entry, error));
    this.scheduleFlush();
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
    const index = this.streaming.indexOf(entry);
    if (index >= 0) this.streaming.splice(index, 1);
  }

  private refuse(join: JoinMessage, error: unknown): void {
    if (this.disposed) return;
    if (error instanceof StreamError && error.code === ErrorCode.PermissionDenied) {
      this.sendText(unauthorizedWrapper(join));
      return;
    }
    const failure = StreamError.from(error);
    this.sendText(errorWrapper(join, failure.code, failure.message));
  }

  /** A subscription the engine ended (slow consumer, lost messages) takes the connection with it. */
  private ended(entry: Joined, error: StreamError | undefined): void {
    this.forget(entry);
    if (error && !this.disposed) this.options.close(closingFor(error));
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.waitingForDrain || this.disposed) return;
    this.flushScheduled = true;
    // Once per turn of the event loop: what arrived meanwhile goes out in one write.
    flushes.add(this);
  }

  /**
   * Sends what the subscriptions hold, round-robin, in one write, until the socket
   * holds SEND_HIGH_WATER_BYTES; then waits for it to drain.
   */
  flush(): void {
    this.flushScheduled = false;
    if (this.disposed || this.waitingForDrain || this.ws.readyState !== this.ws.OPEN) return;
    // Only our own frames are written to this socket (ws compresses nothing), so its unsent bytes are ws's bufferedAmount.
    const room = SEND_HIGH_WATER_BYTES - this.socket.writableLength;
    let more = false;
    if (room > 0) {
      try {
        do {
          more = false;
          const streaming = this.streaming;
          for (let i = 0; i < streaming.length && batch.byteLength < room; i++) more = this.frameSome(streaming[i]) || more;
        } while (more && batch.byteLength < room);
      } finally {
        const frames = batch.take();
        if (frames) this.socket.write(frames);
      }
    }
    if (more || this.socket.writableLength >= SEND_HIGH_WATER_BYTES) this.awaitDrain();
  }

  /** Frames up to TAKE_PER_ROUND messages of one subscription; true when it may hold more. */
  private frameSome(entry: Joined): boolean {
    const subscription = entry.subscription!;
    for (let sent = 0; sent < TAKE_PER_ROUND; sent++) {
      const delivery = subscription.take();
      if (!delivery) return false;
      const head = wrapperHead(delivery, entry.target);
      if (head) batch.add(head, entry.suffix);
    }
    return true;
  }

  private awaitDrain(): void {
    if (this.waitingForDrain) return;
    if (this.socket.writableLength < SEND_HIGH_WATER_BYTES) {
      this.scheduleFlush();
      return;
    }
    this.waitingForDrain = true;
    this.socket.once("drain", () => {
      this.waitingForDrain = false;
      this.scheduleFlush();
    });
  }

  /** Written as a frame of our own too, so that it keeps its place among the flushed messages. */
  private sendText(text: string): void {
    if (this.ws.readyState === this.ws.OPEN) this.socket.write(textFrame(text));
  }
}
