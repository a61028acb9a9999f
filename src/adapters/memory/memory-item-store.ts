import type {
  BatchCommitResult,
  BatchWrite,
  CommitResult,
  DueExpiry,
  GroupListener,
  ItemStore,
  ItemStoreOptions,
  ItemWrite,
  StoredRequest,
  WriteBatch,
} from "../../core/item-store.js";
import type {
  GroupEvent,
  GroupMessage,
  GroupSnapshot,
  ItemChange,
  ItemPage,
  ItemPageRequest,
  NamePageRequest,
  StoredItem,
} from "../../core/model.js";
import { checkBatch, commitOne, DEFAULT_HISTORY_LIMIT, MAX_REQUESTS_PER_GROUP } from "../../core/item-store.js";
import { NO_METRICS, secondsSince, type Metrics } from "../../core/metrics.js";
import { HistoryBuffer } from "../history-buffer.js";
import { ExpiryQueue } from "./expiry-queue.js";
import { InsertionOrder } from "./insertion-order.js";
import { MemoryOutbox } from "./memory-outbox.js";
import { outboxAdditions } from "../../core/outbox.js";
import { SortedNames } from "./sorted-names.js";

interface GroupState {
  /**
   * The group's names, shared by its changes: the request's own copies can then die
   * young, before the garbage collector has to move them with the retained changes.
   */
  streamName: string;
  groupId: string;
  items: Map<string, StoredItem>;
  /** The same items by created offset, which is the order pages follow. */
  order: InsertionOrder;
  /** Kept after the group empties, so offsets never repeat. */
  offset: number;
  history: HistoryBuffer;
  listeners: Set<GroupListener>;
  /** Remembered requests by id, oldest first (a Map keeps insertion order). */
  requests: Map<string, StoredRequest>;
}

interface StreamState {
  /** Every group ever written or watched, emptied ones included (they keep their offset). */
  groups: Map<string, GroupState>;
  /** The ids of the groups that hold items, which is what listGroups pages through. */
  nonEmpty: SortedNames;
}

/** Keeps everything in this process. Nothing survives a restart. */
export class MemoryItemStore implements ItemStore {
  readonly name = "memory";
  private readonly streams = new Map<string, StreamState>();
  /** The streams with a non-empty group. */
  private readonly streamNames = new SortedNames();
  private readonly historyLimit: number;
  private readonly expiries = new ExpiryQueue((entry) => {
    const item = this.group(entry.streamName, entry.groupId)?.items.get(entry.itemId);
    return item !== undefined && item.createdOffset === entry.createdOffset && item.expiresAtMs === entry.expiresAtMs;
  });
  private metrics: Metrics = NO_METRICS;
  /** The pending calls of `at_least_once` triggers, recorded by `commitBatch`. */
  readonly outbox: MemoryOutbox;

  constructor(options: ItemStoreOptions = {}) {
    this.historyLimit = options.historyLimit ?? DEFAULT_HISTORY_LIMIT;
    this.outbox = new MemoryOutbox(options.maxOutbox);
  }

  useMetrics(metrics: Metrics): void {
    this.metrics = metrics;
  }

  async getItem(streamName: string, groupId: string, itemId: string): Promise<StoredItem | undefined> {
    return this.group(streamName, groupId)?.items.get(itemId);
  }

  commit(write: ItemWrite): Promise<CommitResult> {
    return commitOne(this, write);
  }

  async commitBatch(batch: WriteBatch): Promise<BatchCommitResult> {
    const start = performance.now();
    const group = this.group(batch.streamName, batch.groupId, true);
    const { request } = batch;
    if (request) {
      const known = this.liveRequest(group, request.requestId, batch.timestampMs);
      if (known) return { ok: false, reason: "duplicate", request: known };
    }
    const refused = checkBatch(batch.writes, (itemId) => group.items.get(itemId));
    if (refused) return refused;
    const calls = outboxAdditions(batch.writes);
    const outboxFull = calls && this.outbox.full(calls);
    if (outboxFull) return { ok: false, reason: "outbox_full", triggerId: outboxFull };
    const changes = batch.writes.map((write) => this.apply(group, write, batch.timestampMs));
    if (calls) batch.writes.forEach((write, index) => write.outbox && this.outbox.record(write.outbox, changes[index]));
    if (request) this.remember(group, { ...request, offset: group.offset }, batch.timestampMs);
    // Timed without the hand-over to watchers, which is delivery, not commit.
    this.metrics.committed(this.name, batch.writes.length, secondsSince(start));
    for (const change of changes) this.emit(group, change);
    return { ok: true, changes, offset: group.offset };
  }

  async findRequest(streamName: string, groupId: string, requestId: string, nowMs: number): Promise<StoredRequest | undefined> {
    const group = this.group(streamName, groupId);
    return group && this.liveRequest(group, requestId, nowMs);
  }

  /** One write of a batch whose checks passed. */
  private apply(group: GroupState, write: BatchWrite, timestampMs: number): ItemChange {
    const existing = group.items.get(write.itemId);
    const offset = ++group.offset;
    let change: ItemChange;
    if (existing === undefined) {
      // A create (checkBatch refuses deleting a missing item).
      const item: StoredItem = {
        itemId: write.itemId,
        data: write.value!,
        revision: 1,
        createdOffset: offset,
        updatedAtMs: timestampMs,
        ...expiry(write),
      };
      group.items.set(item.itemId, item);
      group.order.append(item);
      if (group.items.size === 1) this.groupFilled(group);
      change = this.change(group, "create", offset, timestampMs, item, undefined);
    } else if (write.value === undefined) {
      group.items.delete(existing.itemId);
      group.order.remove(existing.createdOffset);
      if (group.items.size === 0) this.groupEmptied(group);
      change = this.change(group, "delete", offset, timestampMs, existing, existing);
      if (write.expired) change.expired = true;
    } else {
      // The stored item's id, like the group's names, outlives the request's string.
      const item: StoredItem = {
        itemId: existing.itemId,
        data: write.value,
        revision: existing.revision + 1,
        createdOffset: existing.createdOffset,
        updatedAtMs: timestampMs,
        ...expiry(write),
      };
      group.items.set(item.itemId, item);
      group.order.replace(item);
      change = this.change(group, "update", offset, timestampMs, item, existing);
      if (write.ops) change.ops = write.ops;
    }
    if (write.value !== undefined && write.expiresAtMs !== undefined) {
      const { streamName, groupId } = group;
      this.expiries.push({ streamName, groupId, itemId: write.itemId, createdOffset: change.createdOffset, expiresAtMs: write.expiresAtMs });
    }
    if (group.items.size === 0) group.history.clear();
    else group.history.push(change);
    return change;
  }

  private liveRequest(group: GroupState, requestId: string, nowMs: number): StoredRequest | undefined {
    const known = group.requests.get(requestId);
    return known && known.expiresAtMs > nowMs ? known : undefined;
  }

  /** Records a request, forgetting the expired ones and the oldest beyond the bound. */
  private remember(group: GroupState, request: StoredRequest, nowMs: number): void {
    const { requests } = group;
    requests.delete(request.requestId);
    requests.set(request.requestId, request);
    for (const [id, known] of requests) {
      if (requests.size <= MAX_REQUESTS_PER_GROUP && known.expiresAtMs > nowMs) break;
      requests.delete(id);
    }
  }

  async publishEvent(event: Omit<GroupEvent, "kind" | "offset">): Promise<GroupEvent> {
    const group = this.group(event.streamName, event.groupId);
    const stamped: GroupEvent = { kind: "event", ...event, offset: group?.offset ?? 0 };
    if (group) this.emit(group, stamped);
    return stamped;
  }

  async snapshotItem(streamName: string, groupId: string, itemId: string): Promise<GroupSnapshot> {
    const group = this.group(streamName, groupId);
    const item = group?.items.get(itemId);
    return { items: item ? [item] : [], offset: group?.offset ?? 0 };
  }

  async readItems(streamName: string, groupId: string, request: ItemPageRequest): Promise<ItemPage> {
    const group = this.group(streamName, groupId);
    if (!group) return { items: [], offset: 0, more: false };
    const { items, more } = group.order.page(request.afterCreatedOffset, request.maxItems, request.maxBytes);
    return { items, offset: group.offset, more };
  }

  async currentOffset(streamName: string, groupId: string): Promise<number> {
    return this.group(streamName, groupId)?.offset ?? 0;
  }

  async changesSince(streamName: string, groupId: string, afterOffset: number): Promise<ItemChange[] | undefined> {
    const group = this.group(streamName, groupId);
    if (!group) return afterOffset === 0 ? [] : undefined;
    return group.history.since(afterOffset, group.offset);
  }

  async dueExpiries(nowMs: number, limit: number): Promise<DueExpiry[]> {
    return this.expiries
      .due(nowMs, limit)
      .map(({ streamName, groupId, itemId, expiresAtMs }) => ({ streamName, groupId, itemId, expiresAtMs }));
  }

  async listGroups(streamName: string, page: NamePageRequest): Promise<string[]> {
    return this.streams.get(streamName)?.nonEmpty.page(page.after, page.limit) ?? [];
  }

  async countGroups(streamName: string): Promise<number> {
    return this.streams.get(streamName)?.nonEmpty.size ?? 0;
  }

  async listStreams(page: NamePageRequest): Promise<string[]> {
    return this.streamNames.page(page.after, page.limit);
  }

  async watch(streamName: string, groupId: string, listener: GroupListener): Promise<() => void> {
    const group = this.group(streamName, groupId, true);
    group.listeners.add(listener);
    return () => {
      group.listeners.delete(listener);
    };
  }

  isReady(): boolean {
    return true;
  }

  /** Active `watch` listeners over all groups, for tests that check nothing leaks. */
  get watcherCount(): number {
    let count = 0;
    for (const stream of this.streams.values()) for (const group of stream.groups.values()) count += group.listeners.size;
    return count;
  }

  async close(): Promise<void> {
    for (const stream of this.streams.values()) for (const group of stream.groups.values()) group.listeners.clear();
  }

  private group(streamName: string, groupId: string): GroupState | undefined;
  private group(streamName: string, groupId: string, create: true): GroupState;
  private group(streamName: string, groupId: string, create = false): GroupState | undefined {
    let stream = this.streams.get(streamName);
    if (!stream) {
      if (!create) return undefined;
      stream = { groups: new Map(), nonEmpty: new SortedNames() };
      this.streams.set(streamName, stream);
    }
    let group = stream.groups.get(groupId);
    if (!group && create) {
      group = {
        streamName,
        groupId,
        items: new Map(),
        order: new InsertionOrder(),
        offset: 0,
        history: new HistoryBuffer(this.historyLimit),
        listeners: new Set(),
        requests: new Map(),
      };
      stream.groups.set(groupId, group);
    }
    return group;
  }

  /** The group got its first item: it joins the listings. */
  private groupFilled(group: GroupState): void {
    const stream = this.streams.get(group.streamName)!;
    stream.nonEmpty.add(group.groupId);
    if (stream.nonEmpty.size === 1) this.streamNames.add(group.streamName);
  }

  /** The group lost its last item: it leaves the listings (its state stays, for its offset). */
  private groupEmptied(group: GroupState): void {
    const stream = this.streams.get(group.streamName)!;
    stream.nonEmpty.delete(group.groupId);
    if (stream.nonEmpty.size === 0) this.streamNames.delete(group.streamName);
  }

  /**
   * The change that leaves `item` (for a delete: removes it) where `previous` was
   * (undefined for a create).
   */
  private change(
    group: GroupState,
    type: ItemChange["type"],
    offset: number,
    timestampMs: number,
    item: StoredItem,
    previous: StoredItem | undefined,
  ): ItemChange {
    return {
      kind: "change",
      streamName: group.streamName,
      groupId: group.groupId,
      type,
      itemId: item.itemId,
      data: item.data,
      oldValue: previous?.data,
      oldUpdatedAtMs: previous?.updatedAtMs,
      createdOffset: item.createdOffset,
      revision: item.revision,
      offset,
      timestampMs,
    };
  }

  private emit(group: GroupState, message: GroupMessage): void {
    for (const listener of group.listeners) listener(message);
  }
}

/** The expiry a write gives its item: none unless the write sets one. */
function expiry(write: BatchWrite): { expiresAtMs?: number } {
  return write.expiresAtMs === undefined ? {} : { expiresAtMs: write.expiresAtMs };
}
