import type { Metrics } from "./metrics.js";
import type { JsonValue } from "./json.js";
import type { GroupEvent, GroupMessage, GroupSnapshot, ItemChange, ItemPage, ItemPageRequest, NamePageRequest, StoredItem } from "./model.js";
import type { Log } from "./log.js";
import type { UpdateOp } from "./update-ops.js";
import { outboxFullError } from "./outbox.js";

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
   * The update ops that turn the stored value into `value` (see ItemChange.ops); given
   * only for an update of an existing item. The store keeps them with the change.
   */
  ops?: readonly UpdateOp[];
  /**
   * The `at_least_once` triggers this change fires: the store records one pending call
   * per id in its TriggerOutbox in the same atomic step as the change, or refuses the
   * batch (`outbox_full`) when one of their outboxes would overflow. Default none.
   */
  outbox?: readonly string[];
  /**
   * When the written item expires (ms since the Unix epoch); undefined for an item
   * that never does. A write without it leaves the item without expiry.
   */
  expiresAtMs?: number;
  /** A delete made because the item expired: its change says so (ItemChange.expired). */
  expired?: boolean;
}

/** An item whose expiry time has come, as the store's expiry index lists it (see ItemStore.dueExpiries). */
export interface DueExpiry {
  streamName: string;
  groupId: string;
  itemId: string;
  expiresAtMs: number;
}

/**
 * Whether an item is expired at `nowMs`: its expiry is set and not later than now.
 * Every read path drops such items, so an expired item is never seen, whether or not
 * it has been removed yet.
 */
export function isExpired(item: { expiresAtMs?: number }, nowMs: number): boolean {
  const expiresAt = item.expiresAtMs;
  return expiresAt !== undefined && expiresAt > 0 && expiresAt <= nowMs;
}

export type CommitResult =
  | { ok: true; change: ItemChange }
  /** The item's revision (or incarnation) was not the expected one; nothing was written. */
  | { ok: false; currentRevision: number };

/** One write of a batch: an ItemWrite without what the batch gives for all of its writes. */
export type BatchWrite = Omit<ItemWrite, "streamName" | "groupId" | "timestampMs">;

/**
 * The unit of commit: writes of one group that happen together or not at all, and
 * what else must be recorded in the same step. Every adapter applies it as one atomic
 * step (one transaction and one fsync on disk, one script on Redis): the writes in
 * order (a later write to an item sees the earlier ones), each checked as its own
 * compare-and-set, the changes at consecutive offsets, handed to the group's watchers
 * one after another with nothing in between. When any write's check fails, nothing
 * at all is written. Later features add their records here, so that they share the
 * commit's atomicity (a request record today).
 */
export interface WriteBatch {
  streamName: string;
  groupId: string;
  /**
   * In order; may be empty when `request` is given (a request that changed nothing is
   * remembered all the same, so that its retry answers the same).
   */
  writes: readonly BatchWrite[];
  /** The time of every change of the batch. */
  timestampMs: number;
  /**
   * Remembers the request that made the batch, for retries (idempotent writes). The
   * batch is refused as a duplicate, writing nothing, when the group still remembers
   * a request with this id.
   */
  request?: RequestRecord;
}

/** A request as the group remembers it for `idempotency_window_ms`: enough to answer its retries. */
export interface RequestRecord {
  /** The client's id, unique per stream and group; at most MAX_REQUEST_ID_BYTES bytes. */
  requestId: string;
  /** Names the request's body: a retry with the same id must carry the same one. */
  fingerprint: string;
  /**
   * The answer to the request, encoded by the engine; opaque to the store. Offsets are
   * not in it: they are only known in the commit, so the store keeps the group offset
   * after it (`StoredRequest.offset`) and the engine derives them.
   */
  response: string;
  /** When the group may forget the request (ms since the epoch, on the writer's clock). */
  expiresAtMs: number;
}

/** A remembered request, as `findRequest` and a duplicate refusal return it. */
export interface StoredRequest extends RequestRecord {
  /** The group offset right after the request's commit. */
  offset: number;
}

export type BatchCommitResult =
  /** One change per write, in write order (offsets consecutive), and the group offset after them. */
  | { ok: true; changes: ItemChange[]; offset: number }
  /** The write at `index` failed its check against `currentRevision`; nothing was written. */
  | { ok: false; reason: "precondition"; index: number; currentRevision: number }
  /** The group still remembers the batch's request id: nothing was written. */
  | { ok: false; reason: "duplicate"; request: StoredRequest }
  /** The outbox of trigger `triggerId` cannot take the batch's calls (see TriggerOutbox.maxPending): nothing was written. */
  | { ok: false; reason: "outbox_full"; triggerId: string };

/**
 * Most request records a group keeps. When more arrive within the window, the oldest
 * are forgotten early, so that a client inventing ids cannot grow a group's memory
 * without bound; each record costs about the size of its answer.
 */
export const MAX_REQUESTS_PER_GROUP = 10_000;

/** Most bytes of a request id (UTF-8). */
export const MAX_REQUEST_ID_BYTES = 128;

/**
 * The checks of a batch's writes in order, each against the item as the writes before
 * it in the batch left it (`stored` reads the item as the store holds it now). Shared
 * by the adapters that check in TypeScript (commit.lua does the same). Returns the
 * refusal of the first write that fails, or `undefined` when the batch may go ahead.
 */
export function checkBatch(
  writes: readonly BatchWrite[],
  stored: (itemId: string) => { revision: number; createdOffset: number } | undefined,
): Extract<BatchCommitResult, { reason: "precondition" }> | undefined {
  // Items the batch wrote so far; a created one's offset is not known yet (-1), and no write can expect it.
  const written = new Map<string, { revision: number; createdOffset: number } | undefined>();
  for (let index = 0; index < writes.length; index++) {
    const write = writes[index];
    const current = written.has(write.itemId) ? written.get(write.itemId) : stored(write.itemId);
    const refused = checkPrecondition(write, current);
    if (refused) return { ok: false, reason: "precondition", index, currentRevision: refused.currentRevision };
    written.set(
      write.itemId,
      write.value === undefined ? undefined : { revision: (current?.revision ?? 0) + 1, createdOffset: current?.createdOffset ?? -1 },
    );
  }
  return undefined;
}

/** A single write as a batch of one, for the adapters' `commit`. */
export async function commitOne(store: Pick<ItemStore, "commitBatch">, write: ItemWrite): Promise<CommitResult> {
  const { streamName, groupId, timestampMs, ...rest } = write;
  const result = await store.commitBatch({ streamName, groupId, timestampMs, writes: [rest] });
  if (result.ok) return { ok: true, change: result.changes[0] };
  if (result.reason === "precondition") return { ok: false, currentRevision: result.currentRevision };
  if (result.reason === "outbox_full") throw outboxFullError(result.triggerId);
  throw new Error("a write without a request cannot be a duplicate");
}

/**
 * The compare-and-set of one write against the item as stored now (`undefined` when there
 * is none), shared by the adapters that check it in TypeScript (Redis checks the same in
 * commit.lua). Returns the refusal, or `undefined` when the write may go ahead: the
 * revision must be the expected one, a delete needs an item, and an item that was deleted
 * and re-created meanwhile is not the one the write was computed from.
 */
export function checkPrecondition(
  write: BatchWrite,
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
 * - `commitBatch` is atomic (see WriteBatch): it checks every write, writes (or
 *   deletes) the items, advances the group offset by exactly one per write, appends the
 *   changes to the group's history, records the request, and hands the changes to the
 *   group's watchers, as one step. When its promise resolves, the batch is as durable
 *   as the adapter promises. `commit` is a batch of one write (see commitOne).
 * - A request record is kept until its `expiresAtMs` and among the group's last
 *   MAX_REQUESTS_PER_GROUP, whichever ends first; it survives a restart wherever items do.
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
  /**
   * True when batches commit in the order `commitBatch` was called, each seeing the ones
   * before it, even while earlier ones still wait for their commit (the file store's
   * group commit). The engine then lets an item's next writer decide against the queued
   * write and join its commit; the revision check still guards every write. Default false.
   */
  readonly commitsInQueueOrder?: boolean;

  getItem(streamName: string, groupId: string, itemId: string): Promise<StoredItem | undefined>;
  /** One write: a batch of one without a request (see commitOne). */
  commit(write: ItemWrite): Promise<CommitResult>;
  /** Applies a batch as one atomic step; see WriteBatch and the contract above. */
  commitBatch(batch: WriteBatch): Promise<BatchCommitResult>;
  /**
   * The request the group remembers under `requestId`, if its record has not expired by
   * `nowMs` (nor been pushed out by newer ones).
   */
  findRequest(streamName: string, groupId: string, requestId: string, nowMs: number): Promise<StoredRequest | undefined>;
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
   * Up to `limit` items whose expiry is at or before `nowMs`, earliest first, from the
   * store's index of expiries. Listing an item removes nothing: the engine's sweeper
   * deletes each through `commit` with the item's revision as expected, so when several
   * processes share the store, exactly one of them removes it. An item listed again
   * after it was removed or rewritten is skipped by that check.
   */
  dueExpiries?(nowMs: number, limit: number): Promise<DueExpiry[]>;
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
