import type { ItemStore } from "./item-store.js";
import type { GroupMessage } from "./model.js";
import { Delivery } from "./delivery.js";
import { ErrorCode, StreamError } from "./errors.js";
import type { Subscription } from "./subscription.js";
import { SnapshotSession } from "./snapshot-session.js";

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
export class GroupFeed {
  private readonly groupSubscribers = new Set<Subscription>();
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

  add(subscription: Subscription): void {
    const itemId = subscription.target.itemId;
    if (itemId === undefined) {
      this.groupSubscribers.add(subscription);
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
      this.groupSubscribers.delete(subscription);
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
    this.lastOffset = undefined;
  }

  private dispatch(message: GroupMessage): void {
    if (message.kind === "change") {
      this.lastOffset = message.offset;
      for (const session of this.sessions) session.observe(message);
    }
    const delivery = new Delivery(message);
    for (const subscription of this.groupSubscribers) subscription.deliver(delivery);
    if (message.itemId !== undefined) {
      const subscribers = this.itemSubscribers.get(message.itemId);
      if (subscribers) for (const subscription of subscribers) subscription.deliver(delivery);
    }
  }
}
