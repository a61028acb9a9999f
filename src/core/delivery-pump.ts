import type { Delivery } from "./delivery.js";
import type { Flushable, FlushScheduler } from "./flush-scheduler.js";
import type { Subscription } from "./subscription.js";
import { ErrorCode, StreamError } from "./errors.js";
import { NO_METRICS, type Metrics, type SubscriptionTransport } from "./metrics.js";

/**
 * What a transport gives the pump: a way to turn a delivery into bytes and to write
 * them. It knows its wire format and its socket; the pump knows when to take, how
 * much, and when to wait. `S` is what the transport needs to frame a delivery of one
 * subscription (the stream socket's subscription id, for instance).
 */
export interface FrameSink<S> {
  /**
   * Bytes the transport takes now before it is full. The pump frames at most this
   * much per flush (the frame that crosses it included); 0 or less frames nothing.
   */
  readonly room: number;
  /**
   * Bytes written and not yet handed to the kernel: they count toward the byte bound
   * of each subscription the pump serves (QueueLimits.maxBytes).
   */
  readonly buffered: number;
  /** Adds one delivery to the batch being built; returns its bytes on the wire (0 when nothing is sent for it). */
  frame(delivery: Delivery, source: S): number;
  /**
   * Writes what was framed since the last call, in as few writes as the transport
   * allows; called once per flush, even when nothing was framed. False: the pump
   * takes nothing more until the drain listener is called (a transport that is
   * closing may never call it).
   */
  write(): boolean;
  /** Registers the listener the transport calls when its buffer has drained. */
  onDrain(listener: () => void): void;
  offDrain(listener: () => void): void;
}

export interface DeliveryPumpOptions {
  /**
   * Most messages taken from one subscription before the next one gets its turn, so
   * that one busy subscription cannot starve the others of a connection. Default 64:
   * a burst still goes out in few rounds, and a round is short.
   */
  takePerRound?: number;
  /** Where each write's messages and delivery lag are counted, once per flush. Default: nowhere. */
  metrics?: Metrics;
  /** The transport named in those counts. Default `in_process`. */
  transport?: SubscriptionTransport;
}

const DEFAULT_TAKE_PER_ROUND = 64;

/**
 * Moves deliveries from subscriptions to a transport: take, frame, write, wait for
 * drain. A subscription pushes (`onReadable`); the pump then flushes once per
 * event-loop turn through the server's FlushScheduler, so that what arrived in one
 * turn leaves in one write. While the transport is full it takes nothing, so a
 * client that does not keep up fills its subscription's bounded queue and is ended
 * there, instead of growing the server's memory.
 *
 * The fan-out path (onReadable, flush) allocates nothing per delivery: the flags and
 * the listeners below are made once per pump.
 */
export class DeliveryPump<S> implements Flushable {
  /** The subscriptions, in the order they were added, and beside each its source. */
  private readonly subscriptions: Subscription[] = [];
  private readonly sources: S[] = [];
  private readonly takePerRound: number;
  private readonly metrics: Metrics;
  private readonly transport: SubscriptionTransport;
  private queued = false;
  private waitingForDrain = false;
  private closed = false;

  constructor(
    private readonly sink: FrameSink<S>,
    private readonly scheduler: FlushScheduler,
    options: DeliveryPumpOptions = {},
  ) {
    this.takePerRound = options.takePerRound ?? DEFAULT_TAKE_PER_ROUND;
    this.metrics = options.metrics ?? NO_METRICS;
    this.transport = options.transport ?? "in_process";
    sink.onDrain(this.drained);
  }

  /** Give this to `engine.subscribe` as `onReadable`: the subscription calls it whenever it queues a message. */
  readonly onReadable = (): void => this.schedule();

  /** Pumps from `subscription` too, framing its deliveries with `source`. */
  add(subscription: Subscription, source: S): void {
    if (this.closed) return;
    subscription.transport = this.transportState;
    this.subscriptions.push(subscription);
    this.sources.push(source);
    this.schedule();
  }

  /** Stops pumping from `subscription`; what it still holds is not taken. */
  remove(subscription: Subscription): void {
    const index = this.subscriptions.indexOf(subscription);
    if (index < 0) return;
    this.subscriptions.splice(index, 1);
    this.sources.splice(index, 1);
  }

  /** Stops for good: nothing more is taken or written. Ending the subscriptions is the caller's. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.subscriptions.length = 0;
    this.sources.length = 0;
    this.sink.offDrain(this.drained);
  }

  /** Flushes on the next turn, unless a flush is queued already or the transport is full. */
  schedule(): void {
    if (this.queued || this.waitingForDrain || this.closed) return;
    this.queued = true;
    this.scheduler.add(this);
  }

  /**
   * Frames what the subscriptions hold, round-robin, until the transport's room is
   * used, then writes it all at once; waits for drain when the transport is full and
   * comes back next turn when subscriptions still hold messages.
   */
  flush(): void {
    this.queued = false;
    if (this.closed || this.waitingForDrain) return;
    const sink = this.sink;
    const room = sink.room;
    let framed = 0;
    let delivered = 0;
    /** When the first change or event framed was committed: the oldest in this write, near enough. */
    let committedAt = 0;
    let more = false;
    let writable: boolean;
    try {
      const subscriptions = this.subscriptions;
      const sources = this.sources;
      const takePerRound = this.takePerRound;
      while (framed < room) {
        more = false;
        for (let i = 0; i < subscriptions.length && framed < room; i++) {
          const subscription = subscriptions[i];
          const source = sources[i];
          for (let taken = 0; taken < takePerRound && framed < room; taken++) {
            const delivery = subscription.take();
            if (delivery === undefined) break;
            delivered++;
            if (committedAt === 0) {
              const message = delivery.message;
              if (message.kind === "change" || message.kind === "event") committedAt = message.timestampMs;
            }
            try {
              framed += sink.frame(delivery, source);
            } catch (error) {
              // One message that cannot be encoded ends its own subscription, never the process.
              subscription.end(new StreamError(ErrorCode.Internal, `a message could not be encoded: ${StreamError.from(error).message}`));
              break;
            }
          }
          if (subscription.pending > 0) more = true;
        }
        if (!more) break;
      }
    } finally {
      // What was framed was taken from its queue: it is written even if framing a later one failed.
      writable = sink.write();
    }
    if (delivered > 0 && this.metrics !== NO_METRICS) this.metrics.delivered(this.transport, delivered, committedAt === 0 ? undefined : Math.max(0, Date.now() - committedAt) / 1000);
    if (!writable) this.waitingForDrain = true;
    else if (more || framed >= room) this.schedule();
  }

  /** What every subscription of this pump sees of the transport (see Subscription.transport). */
  private readonly transportState = {
    buffered: (): number => this.sink.buffered,
    blocked: (): boolean => this.waitingForDrain,
  };

  private readonly drained = (): void => {
    if (!this.waitingForDrain) return;
    this.waitingForDrain = false;
    this.schedule();
  };
}
