import type { ItemStore } from "./item-store.js";
import type { GroupMessage } from "./model.js";
import { Delivery } from "./delivery.js";
import { ErrorCode, StreamError } from "./errors.js";
import type { Subscription } from "./subscription.js";
import { SnapshotSession } from "./snapshot-session.js";
import type { Flushable, FlushScheduler } from "./flush-scheduler.js";

/**
 * Most subscribers a message is handed to within the write that made it. Beyond, the
 * fan-out runs in the scheduler's slices: at 20,000 subscribers, handing a change to
 * each took 10 ms or more of the write, so 100 writes/s filled the event loop with
 * fan-out and unary calls (the writes' own acknowledgements among them) waited behind it.
 */
const WRITE_FAN_OUT = 256;
/**
 * Deliveries handed out per flush of a fan-out, one flush at the start of each turn: about
 * a millisecond, then the transports write them. Enough that every subscription of a
 * 20,000-subscriber group gets several messages per round of its transports, which then
 * write them together.
 */
const FAN_OUT_CHUNK = 4096;

/** One message on its way to the subscribers the group had when it came (see GroupFeed.dispatch). */
interface FanOut {
  delivery: Delivery;
  /** The group's subscribers then: an array shared by every message until they change. */
  group: Subscription[];
  /** The item's subscribers then, if the message concerns one that has any. */
  item: Subscription[] | undefined;
}

export interface GroupFeedOptions {
  /** Where a large fan-out runs; without one every message is handed out at once. See EngineOptions.scheduler. */
  scheduler: FlushScheduler | undefined;
  /**
   * Most messages waiting to be handed out (see QueueLimits.maxMessages): beyond, the
   * subscribers are that far behind, and are ended as their own queues would end them.
   */
  maxPending: number;
}

/**
 * The local fan-out point of one group: it watches the group through the store once,
 * however many local subscribers there are, wraps each message once and hands it to
 * the subscribers it concerns.
 *
 * It is the one place that makes delivery gap-free. Stores deliver at most once: a
 * change whose offset skips ahead, or a store's `onLoss`, means some were lost in
 * transit, and the feed replays them from the store's history (holding live messages
 * back meanwhile). When the history no longer holds them, or the store cannot deliver
 * any more, it ends its subscribers with UNAVAILABLE, and they resume with from_offset.
 */
export class GroupFeed implements Flushable {
  private readonly groupSubscribers = new Set<Subscription>();
  /** `groupSubscribers` as an array, made when a message needs it and kept until they change. */
  private groupRecipients: Subscription[] | undefined;
  /** Messages being handed out, oldest first from `fanOutHead`; `fanOutAt` is where the oldest has got to. */
  private fanOuts: Array<FanOut | undefined> = [];
  private fanOutHead = 0;
  private fanOutAt = 0;
  private fanOutQueued = false;
  private readonly itemSubscribers = new Map<string, Set<Subscription>>();
  private unwatch: (() => void) | undefined;
  private closed = false;
  /**
   * Offset of the last change passed on, or of the group when the watch began: every
   * later change arrives or is in history. Undefined after a loss that could not be
   * replayed, until the next change sets it again.
   */
  private lastOffset: number | undefined;
  /** Messages held back until the watch's start offset is known, or while a gap is filled. */
  private backlog: GroupMessage[] | undefined = [];
  /** A loss reported while the start offset was read or a gap filled: fill once that is done. */
  private lossPending = false;
  /** Snapshots being read for this group's subscribers; each sees every change (see SnapshotSession). */
  private readonly sessions = new Set<SnapshotSession>();
  readonly ready: Promise<void>;

  constructor(
    readonly streamName: string,
    readonly groupId: string,
    private readonly store: ItemStore,
    /** See SnapshotSession's chunkBytes. */
    private readonly snapshotChunkBytes: number,
    private readonly options: GroupFeedOptions = { scheduler: undefined, maxPending: Infinity },
  ) {
    this.ready = this.open();
  }

  /**
   * The snapshot session for a subscriber that has just been added: shared with those
   * that joined at the same offset, so that a crowd joining a large group reads and
   * encodes it once. Call `release` on it when done.
   */
  snapshotSession(): SnapshotSession {
    let session: SnapshotSession | undefined;
    for (const candidate of this.sessions) if (candidate.joinable && this.backlog === undefined) session = candidate;
    if (!session) {
      const sessions = this.sessions;
      const created = new SnapshotSession(this.store, this.streamName, this.groupId, this.offset, this.snapshotChunkBytes, () =>
        sessions.delete(created),
      );
      sessions.add(created);
      session = created;
    }
    session.acquire();
    return session;
  }

  /**
   * Watches, then reads the group's offset: a change at or below it is covered by every
   * snapshot taken after `ready`, and every later one arrives (or is replayed).
   */
  private async open(): Promise<void> {
    const unwatch = await this.store.watch(
      this.streamName,
      this.groupId,
      (message) => this.receive(message),
      (reason, replayable) => this.onLoss(reason, replayable),
    );
    if (this.closed) {
      unwatch();
      return;
    }
    this.unwatch = unwatch;
    this.lastOffset = await this.store.currentOffset(this.streamName, this.groupId);
    this.release([]);
  }

  get size(): number {
    let size = this.groupSubscribers.size;
    for (const subscribers of this.itemSubscribers.values()) size += subscribers.size;
    return size;
  }

  /** The newest group offset this feed knows of. */
  get offset(): number {
    return this.lastOffset ?? 0;
  }

  /**
   * The offset every subscriber has been handed every change up to: what a heartbeat may
   * tell them, since a subscriber that resumes from it must not miss a change still on
   * its way. Behind `offset` while a fan-out runs.
   */
  get deliveredOffset(): number {
    const next = this.fanOuts[this.fanOutHead]?.delivery.message;
    if (next === undefined) return this.offset;
    return next.kind === "change" ? next.offset - 1 : next.offset;
  }

  add(subscription: Subscription): void {
    const itemId = subscription.target.itemId;
    if (itemId === undefined) {
      this.groupSubscribers.add(subscription);
      this.groupRecipients = undefined;
      return;
    }
    let subscribers = this.itemSubscribers.get(itemId);
    if (!subscribers) {
      subscribers = new Set();
      this.itemSubscribers.set(itemId, subscribers);
    }
    subscribers.add(subscription);
  }

  remove(subscription: Subscription): void {
    const itemId = subscription.target.itemId;
    if (itemId === undefined) {
      if (this.groupSubscribers.delete(subscription)) this.groupRecipients = undefined;
      return;
    }
    const subscribers = this.itemSubscribers.get(itemId);
    subscribers?.delete(subscription);
    if (subscribers?.size === 0) this.itemSubscribers.delete(itemId);
  }

  subscriptions(): Subscription[] {
    const all = [...this.groupSubscribers];
    for (const subscribers of this.itemSubscribers.values()) all.push(...subscribers);
    return all;
  }

  close(): void {
    this.closed = true;
    this.unwatch?.();
    this.unwatch = undefined;
    this.dropFanOuts();
  }

  private receive(message: GroupMessage): void {
    if (this.backlog) {
      this.backlog.push(message);
      return;
    }
    if (message.kind === "change" && this.lastOffset !== undefined) {
      if (message.offset <= this.lastOffset) return;
      if (message.offset > this.lastOffset + 1) {
        this.backlog = [message];
        void this.fillGap();
        return;
      }
    }
    this.dispatch(message);
  }

  /** The store lost messages in transit: replay them, now or after the gap being filled. */
  private onLoss(reason: string, replayable: boolean): void {
    if (this.closed) return;
    if (!replayable) {
      this.lose(`${reason}; resume with from_offset`);
      return;
    }
    if (this.backlog) {
      // While the start offset is read or a gap is filled: fill (again) once that is done.
      this.lossPending = true;
      return;
    }
    if (this.lastOffset === undefined) {
      this.lose(`${reason}; resume with from_offset`);
      return;
    }
    this.backlog = [];
    void this.fillGap();
  }

  /** Replays the changes after the last one passed on, then the messages held back meanwhile. */
  private async fillGap(): Promise<void> {
    const afterOffset = this.lastOffset ?? 0;
    let missing;
    try {
      missing = await this.store.changesSince(this.streamName, this.groupId, afterOffset);
    } catch {
      missing = undefined;
    }
    if (this.closed) return;
    if (!missing) {
      this.backlog = undefined;
      this.lossPending = false;
      this.lose(`changes after offset ${afterOffset} of this group were lost in transit; resume with from_offset`);
      return;
    }
    this.release(missing);
  }

  /** Passes on `missed`, then what was held back; starts the next fill when a loss came meanwhile. */
  private release(missed: readonly GroupMessage[]): void {
    const held = this.backlog ?? [];
    this.backlog = undefined;
    for (const change of missed) this.receive(change);
    for (const message of held) this.receive(message);
    if (this.lossPending && !this.backlog) {
      this.lossPending = false;
      this.backlog = [];
      void this.fillGap();
    }
  }

  /** Ends every subscriber with UNAVAILABLE: they resume with from_offset. */
  private lose(reason: string): void {
    const error = new StreamError(ErrorCode.Unavailable, reason);
    for (const subscription of this.subscriptions()) subscription.end(error);
    this.dropFanOuts();
    this.lastOffset = undefined;
  }

  /**
   * Hands a message to the subscribers the group has now. A small group gets it at once;
   * a large one (or any while an earlier fan-out still runs, to keep messages in order)
   * through the scheduler, FAN_OUT_CHUNK subscribers per flush, so that the write that
   * made it returns without waiting for every subscriber. Those who join meanwhile are
   * not handed it: their snapshot, read later, already holds it.
   */
  private dispatch(message: GroupMessage): void {
    if (message.kind === "change") {
      this.lastOffset = message.offset;
      for (const session of this.sessions) session.observe(message);
    }
    const delivery = new Delivery(message);
    const itemSubscribers = message.itemId === undefined ? undefined : this.itemSubscribers.get(message.itemId);
    const scheduler = this.options.scheduler;
    if (
      scheduler === undefined ||
      (this.fanOutHead === this.fanOuts.length && this.groupSubscribers.size + (itemSubscribers?.size ?? 0) <= WRITE_FAN_OUT)
    ) {
      for (const subscription of this.groupSubscribers) subscription.deliver(delivery);
      if (itemSubscribers) for (const subscription of itemSubscribers) subscription.deliver(delivery);
      return;
    }
    if (this.fanOuts.length - this.fanOutHead >= this.options.maxPending) {
      for (const subscription of this.subscriptions()) subscription.fellBehind();
      this.dropFanOuts();
      return;
    }
    this.fanOuts.push({ delivery, group: (this.groupRecipients ??= [...this.groupSubscribers]), item: itemSubscribers && [...itemSubscribers] });
    if (!this.fanOutQueued) {
      this.fanOutQueued = true;
      scheduler.addFirst(this);
    }
  }

  /** Hands out the next FAN_OUT_CHUNK deliveries of the waiting messages, in order; comes back for the rest. */
  flush(): void {
    this.fanOutQueued = false;
    const fanOuts = this.fanOuts;
    let budget = FAN_OUT_CHUNK;
    while (budget > 0 && this.fanOutHead < fanOuts.length) {
      const { delivery, group, item } = fanOuts[this.fanOutHead]!;
      const total = group.length + (item?.length ?? 0);
      const end = Math.min(total, this.fanOutAt + budget);
      for (let i = this.fanOutAt; i < end; i++) (i < group.length ? group[i] : item![i - group.length]).deliver(delivery);
      budget -= end - this.fanOutAt;
      this.fanOutAt = end;
      if (end === total) {
        fanOuts[this.fanOutHead++] = undefined;
        this.fanOutAt = 0;
      }
    }
    if (this.fanOutHead === fanOuts.length) {
      this.dropFanOuts();
      return;
    }
    // Flushed slots are given back once they are the larger part, so compacting costs O(1) per message.
    if (this.fanOutHead > fanOuts.length >>> 1) {
      fanOuts.splice(0, this.fanOutHead);
      this.fanOutHead = 0;
    }
    this.fanOutQueued = true;
    this.options.scheduler!.addFirst(this);
  }

  private dropFanOuts(): void {
    this.fanOuts = [];
    this.fanOutHead = 0;
    this.fanOutAt = 0;
  }
}
