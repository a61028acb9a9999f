import type { ItemStore } from "./item-store.js";
import type { GroupMessage } from "./model.js";
import { Delivery } from "./delivery.js";
import { ErrorCode, StreamError } from "./errors.js";
import type { Subscription } from "./subscription.js";

/**
 * The local fan-out point of one group: it watches the group through the adapter
 * once, however many local subscribers there are, checks that changes arrive with
 * contiguous offsets (filling a gap from history, e.g. after a broker reconnect),
 * wraps each message once and hands it to the subscribers it concerns.
 */
export class GroupFeed {
  private readonly groupSubscribers = new Set<Subscription>();
  private readonly itemSubscribers = new Map<string, Set<Subscription>>();
  private unwatch: (() => void) | undefined;
  /** Offset of the last change passed on; undefined until the first one. */
  private lastOffset: number | undefined;
  /** Messages that arrived while a gap is being filled. */
  private backlog: GroupMessage[] | undefined;
  readonly ready: Promise<void>;

  constructor(
    readonly streamName: string,
    readonly groupId: string,
    private readonly adapter: ItemStore,
  ) {
    const onLoss = (reason: string) => this.lose(`${reason}; resume with from_offset`);
    this.ready = adapter.watch(streamName, groupId, (message) => this.receive(message), onLoss).then((unwatch) => {
      this.unwatch = unwatch;
    });
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
        void this.fillGap(this.lastOffset);
        return;
      }
    }
    this.dispatch(message);
  }

  private async fillGap(afterOffset: number): Promise<void> {
    let missing;
    try {
      missing = await this.adapter.changesSince(this.streamName, this.groupId, afterOffset);
    } catch {
      missing = undefined;
    }
    const backlog = this.backlog ?? [];
    this.backlog = undefined;
    if (!missing) {
      this.lose(`changes after offset ${afterOffset} of this group were lost in transit; resume with from_offset`);
      return;
    }
    for (const change of missing) this.dispatch(change);
    for (const message of backlog) this.receive(message);
  }

  /** Ends every subscriber with UNAVAILABLE: they resume with from_offset. */
  private lose(reason: string): void {
    const error = new StreamError(ErrorCode.Unavailable, reason);
    for (const subscription of this.subscriptions()) subscription.end(error);
    this.lastOffset = undefined;
  }

  private dispatch(message: GroupMessage): void {
    if (message.kind === "change") this.lastOffset = message.offset;
    const delivery = new Delivery(message);
    for (const subscription of this.groupSubscribers) subscription.deliver(delivery);
    if (message.itemId !== undefined) {
      const subscribers = this.itemSubscribers.get(message.itemId);
      if (subscribers) for (const subscription of subscribers) subscription.deliver(delivery);
    }
  }
}
