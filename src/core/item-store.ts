import type { Metrics } from "./metrics.js";
import type { JsonValue } from "./json.js";
import type { GroupEvent, GroupMessage, GroupSnapshot, ItemChange, ItemPage, ItemPageRequest, NamePageRequest, StoredItem } from "./model.js";
import type { Log } from "./log.js";

/**
 * A conditional write of one item: it only happens when the item's revision still
 * equals `expectedRevision` (0 = the item must not exist). The engine computes the
 * new value itself (update ops run in one place, in TypeScript, for every adapter)
 * and retries on conflict, so an adapter only needs an atomic compare-and-set.
 */
export interface ItemWrite {
  streamName: string;
  groupId: string;
  itemId: string;
  expectedRevision: number;
  /**
   * When given (the engine always gives it for an existing item), the item must also
   * still be the incarnation created at this offset (see StoredItem.createdOffset):
   * otherwise a value computed from an item that another process deleted and re-created
   * up to the same revision meanwhile would be written over the new one.
   */
  expectedCreatedOffset?: number;
  /** The new value, or `undefined` to delete the item. */
  value: JsonValue | undefined;
  timestampMs: number;
  /**
   * The `at_least_once` triggers this change fires: the store records one pending call
   * per id in its TriggerOutbox in the same atomic step as the change, or refuses the
   * write (`outboxFull`) when one of their outboxes is full. Default none.
   */
  outbox?: readonly string[];
}

export type CommitResult =
  | { ok: true; change: ItemChange }
  /**
   * The item's revision (or incarnation) was not the expected one, or (`outboxFull`, the
   * id of the trigger) an outbox the write would add a call to is full; nothing was written.
   */
  | { ok: false; currentRevision: number; outboxFull?: string };

/**
 * The compare-and-set of one write against the item as stored now (`undefined` when there
 * is none), shared by the adapters that check it in TypeScript (Redis checks the same in
 * commit.lua). Returns the refusal, or `undefined` when the write may go ahead: the
 * revision must be the expected one, a delete needs an item, and an item that was deleted
 * and re-created meanwhile is not the one the write was computed from.
 */
export function checkPrecondition(
  write: ItemWrite,
  current: { revision: number; createdOffset: number } | undefined,
): Extract<CommitResult, { ok: false }> | undefined {
  const currentRevision = current?.revision ?? 0;
  if (currentRevision !== write.expectedRevision) return { ok: false, currentRevision };
  if (write.value === undefined && current === undefined) return { ok: false, currentRevision };
  const incarnation = write.expectedCreatedOffset;
  if (current && incarnation !== undefined && current.createdOffset !== incarnation) return { ok: false, currentRevision };
  return undefined;
}

/** Receives a group's messages in offset order. */
export type GroupListener = (message: GroupMessage) => void;

/**
 * Told that messages of a watched group may have been lost in transit (e.g. with a
 * broker connection). With `replayable`, delivery goes on and the watcher replays what
 * it missed from the history (`changesSince`); without, nothing more will arrive and
 * the watcher must end the subscribers it feeds, so that they resume with from_offset.
 */
export type GroupLossListener = (reason: string, replayable: boolean) => void;

/**
 * Where items live and how a group's changes reach the processes that watch it.
 *
 * Contract, checked by the shared conformance suite:
 * - `commit` is atomic: it compares the revision, writes (or deletes) the item,
 *   advances the group offset by exactly one, appends the change to the group's
 *   history, and hands it to the group's watchers, as one step. When its promise
 *   resolves, the write is as durable as the adapter promises.
 * - A group's offset never goes backwards or repeats, even after the group was emptied.
 * - Watchers receive a group's messages in offset order, changes only after they are
 *   committed, at most once: a store that can lose messages in transit says so through
 *   `onLoss` (see `watch`). Replaying what was lost is the watcher's job, never the store's.
 * - An emptied group disappears from `listGroups`, `countGroups` and (when it was the
 *   stream's last) `listStreams`, and its history is dropped.
 * - Insertion order is the order of `createdOffset`: overwriting keeps an item's place,
 *   delete and re-create moves it to the end. `readItems` pages in that order, so a
 *   cursor (the last created offset seen) stays valid however others write: an item
 *   that exists throughout is read exactly once, and one created later only after it.
 * - Changes carry `oldUpdatedAtMs` and `createdOffset` (see ItemChange).
 */
export interface ItemStore {
  /** A short name for logs and health output ("memory", "file", "redis"). */
  readonly name: string;

  getItem(streamName: string, groupId: string, itemId: string): Promise<StoredItem | undefined>;
  commit(write: ItemWrite): Promise<CommitResult>;
  /** Stamps the event with the group's current offset and hands it to the group's watchers. */
  publishEvent(event: Omit<GroupEvent, "kind" | "offset">): Promise<GroupEvent>;

  /** One item (none when it does not exist) and the group offset it reflects, read in one step. */
  snapshotItem(streamName: string, groupId: string, itemId: string): Promise<GroupSnapshot>;
  /**
   * A page of the group's items in insertion order, with the group offset it reflects,
   * read in one step (see ItemPageRequest). A missing group is an empty last page at
   * its offset.
   */
  readItems(streamName: string, groupId: string, page: ItemPageRequest): Promise<ItemPage>;
  /** The group's current offset (0 for a group that never existed). */
  currentOffset(streamName: string, groupId: string): Promise<number>;
  /**
   * Every retained change with an offset greater than `afterOffset`, in order, or
   * `undefined` when the history no longer holds all of them (or `afterOffset` is
   * ahead of the group).
   */
  changesSince(streamName: string, groupId: string, afterOffset: number): Promise<ItemChange[] | undefined>;

  /** A page of a stream's non-empty groups, sorted by bytes (as compareBytes). */
  listGroups(streamName: string, page: NamePageRequest): Promise<string[]>;
  /** How many non-empty groups the stream has. */
  countGroups(streamName: string): Promise<number>;
  /** A page of the streams that have a non-empty group, sorted by bytes. */
  listStreams(page: NamePageRequest): Promise<string[]>;

  /**
   * Starts delivering a group's messages to `listener`. Resolves once delivery is
   * live, so that a snapshot taken afterwards cannot miss a message. Delivery is at
   * most once: a store that can lose messages in transit (a broker connection drops)
   * calls `onLoss` once delivery is live again, and the watcher replays the gap from
   * `changesSince`; a store that delivers within `commit` never calls it.
   */
  watch(streamName: string, groupId: string, listener: GroupListener, onLoss?: GroupLossListener): Promise<() => void>;

  /**
   * Whether the adapter can serve requests now, writes included: `/healthz` and gRPC
   * health report it. False while a store that needs a connection has none, and while a
   * store on disk cannot write (after a write failed for lack of space or an I/O error,
   * until a write succeeds again), so that a load balancer stops sending traffic that
   * would only fail.
   */
  isReady(): boolean;
  close(): Promise<void>;

  /**
   * Where the store counts its commits (`Metrics.committed`: how long each took, how
   * many writes it carried). The engine calls it once, before any write; a store
   * without it is not timed.
   */
  useMetrics?(metrics: Metrics): void;
  /**
   * The store's connections by name and whether each is up now ("commands" and
   * "subscriber" on Redis), read when metrics are scraped; absent for a store that
   * has no connection.
   */
  connectionStatus?(): Record<string, boolean>;
}

/** Options every adapter understands. */
export interface ItemStoreOptions {
  /**
   * How many changes each group keeps for resuming subscribers. Default 1000: enough
   * to ride out a reconnect at a few hundred changes per second, small enough that
   * 10,000 groups stay within memory.
   */
  historyLimit?: number;
  /**
   * Where the store reports failures it recovers from by itself (a disk that filled up
   * and later has room again). Default: nowhere (silentLog), since health checks report
   * the same outage; the command line passes its log.
   */
  log?: Log;
  /**
   * Most undelivered calls of one `at_least_once` trigger the store keeps (see
   * TriggerOutbox); past it, writes that would add one are refused with
   * RESOURCE_EXHAUSTED. Default DEFAULT_MAX_OUTBOX (100,000).
   */
  maxOutbox?: number;
}

export const DEFAULT_HISTORY_LIMIT = 1000;
