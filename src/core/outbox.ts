import type { ItemChange } from "./model.js";
import { StreamError, ErrorCode } from "./errors.js";

/**
 * A call of an `at_least_once` trigger, as the store keeps it: recorded in the same atomic
 * step as the change it reacts to, and kept until the function succeeded or it became a
 * dead letter.
 */
export interface PendingCall {
  triggerId: string;
  /**
   * The call's place in its trigger's outbox: entries are taken in this order, which for
   * the calls of one item is offset order. Opaque (an SQLite row id, a Redis stream id).
   */
  entryId: string;
  /** Stable across the retries of the call (see deliveryIdOf). */
  deliveryId: string;
  change: ItemChange;
  /** Attempts that failed so far, kept across restarts. */
  attempts: number;
  /** The last attempt's error; empty before the first failure. */
  lastError: string;
}

/** What a trigger's outbox holds now. */
export interface OutboxCounts {
  /** Calls waiting to be delivered (the trigger's lag). */
  pending: number;
  /** Calls kept as dead letters. */
  dead: number;
}

/** A call to add to an outbox outside a write (a replay, see ReplayTrigger). */
export interface ScheduledCall {
  deliveryId: string;
  change: ItemChange;
}

/**
 * Where a store keeps the pending calls of `at_least_once` triggers. The store adds a call
 * inside `commit` for every trigger id the write lists in `ItemWrite.outbox`; this port is
 * how the functions runtime takes them out, in order, and says how each went.
 *
 * Contract:
 * - `take` returns calls this instance is to deliver now, oldest first per trigger, each
 *   at most once until `release` (then they come again); on a shared store it returns
 *   calls only to the one instance that holds the trigger's lease (`owns`).
 * - `complete`, `retryLater` and `bury` may be made durable lazily: losing one in a crash
 *   only makes a call come again, which at least once allows.
 * - The outbox of a trigger holds at most `maxPending` pending calls: a commit that would
 *   add one more is refused (CommitResult.outboxFull), and so is a replay.
 */
export interface TriggerOutbox {
  /** Most pending calls per trigger. */
  readonly maxPending: number;
  /** Up to `limit` calls of the trigger not taken before, oldest first (none when another instance holds the lease). */
  take(triggerId: string, limit: number): Promise<PendingCall[]>;
  /** The call succeeded (or its condition skipped it): it leaves the outbox. */
  complete(call: PendingCall): Promise<void>;
  /** The call failed and will be tried again: its attempt count and error are kept. */
  retryLater(call: PendingCall, error: string): Promise<void>;
  /** The call failed its last attempt: it becomes a dead letter. */
  bury(call: PendingCall, error: string): Promise<void>;
  /** A page of the trigger's dead letters, oldest first, after `afterEntryId` (empty for the first page). */
  deadLetters(triggerId: string, afterEntryId: string, limit: number): Promise<PendingCall[]>;
  /** Puts dead letters (all when `deliveryIds` is empty) back at the end of the outbox with no attempts; resolves with how many. */
  reviveDeadLetters(triggerId: string, deliveryIds: readonly string[]): Promise<number>;
  /** Adds calls at the end of the outbox (a replay); refused whole with RESOURCE_EXHAUSTED when they do not fit. */
  schedule(triggerId: string, calls: readonly ScheduledCall[]): Promise<number>;
  counts(triggerId: string): Promise<OutboxCounts>;
  /** Drops every pending call and dead letter of a trigger that no longer exists. */
  forget(triggerId: string): Promise<void>;
  /** Whether this instance delivers the trigger's calls now. */
  owns(triggerId: string): boolean;
  /** This instance stops delivering the trigger: its untaken calls are taken again later, by it or another instance. */
  release(triggerId: string): Promise<void>;
  close?(): Promise<void>;
}

/**
 * The delivery id of a call: stable across retries and restarts, unique per trigger and
 * change (a group's offsets never repeat). Names are percent-encoded, so `/` separates
 * them unambiguously. A replayed call adds `/r<replay id>` (see replayDeliveryId).
 */
export function deliveryIdOf(triggerId: string, change: Pick<ItemChange, "streamName" | "groupId" | "offset">): string {
  return `${encodeURIComponent(triggerId)}/${encodeURIComponent(change.streamName)}/${encodeURIComponent(change.groupId)}/${change.offset}`;
}

/** The delivery id of a replayed call: the original's plus the replay's own id, so each replay is delivered anew. */
export function replayDeliveryId(triggerId: string, change: Pick<ItemChange, "streamName" | "groupId" | "offset">, replayId: string): string {
  return `${deliveryIdOf(triggerId, change)}/r${replayId}`;
}

/** Why a write or replay was refused: the trigger's outbox is full. */
export function outboxFullError(triggerId: string): StreamError {
  return new StreamError(
    ErrorCode.ResourceExhausted,
    `the outbox of trigger "${triggerId}" is full (undelivered calls at its limit); nothing was written: ` +
      `fix or register the trigger's function, or retry later`,
  );
}

/**
 * Most pending calls per trigger. Default 100,000: a function down for minutes under a
 * few hundred writes per second does not stop writes, while a function that is gone for
 * good stops them before the store fills (Redis keeps the outbox in memory).
 */
export const DEFAULT_MAX_OUTBOX = 100_000;

/** How many calls each trigger gets from a batch's writes (see ItemWrite.outbox); undefined when none. */
export function outboxAdditions(writes: ReadonlyArray<{ outbox?: readonly string[] }>): Map<string, number> | undefined {
  let additions: Map<string, number> | undefined;
  for (const write of writes) {
    for (const triggerId of write.outbox ?? []) {
      additions ??= new Map();
      additions.set(triggerId, (additions.get(triggerId) ?? 0) + 1);
    }
  }
  return additions;
}

/**
 * A change as an outbox keeps it, as JSON text: without the update ops a delta subscriber
 * gets (a trigger's payload carries the value, and ops hold numbers JSON cannot write).
 */
export function outboxChangeText(change: ItemChange): string {
  const { ops: _ops, ...rest } = change;
  return JSON.stringify(rest);
}
