/**
 * A live view: the client's copy of a group (or of one item), kept equal to the server's
 * by applying the messages of whichever transport carries them. The transports turn their
 * wire messages into `ViewMessage`s and do what `receive` answers; the rules that keep
 * the copy right live here, once:
 * - a snapshot's chunks are gathered and applied together, at the last one;
 * - a group's changes must follow each other offset by offset: one already applied is
 *   skipped (a resume repeats the last one, see `resumeFrom`), one beyond the next is a
 *   gap and restarts the stream from the last applied offset;
 * - a snapshot that replaces a copy the view already had is a `reset` (continuity was lost);
 * - a delta change (ops instead of the value) applies to the item at the revision before
 *   it; any other revision means the copy is not the one the ops were made for, and the
 *   stream resumes from the last applied offset without deltas, which brings the whole value.
 */
import { ErrorCode, StreamError } from "./errors.js";
import type { WatchOptions } from "./options.js";
import type { JsonValue } from "./values.js";
import { applyUpdateOps, type UpdateOp } from "../core/update-ops.js";

export interface ViewItem<T = JsonValue> {
  data: T;
  /** 1 when the item was created, +1 on every write. */
  revision: number;
  /** When it was last written, in ms since the Unix epoch. */
  updatedAtMs: number;
}

export type ChangeType = "create" | "update" | "delete";

export interface ViewChange<T = JsonValue> {
  type: ChangeType;
  itemId: string;
  /** The new value; for a delete, the removed one. */
  data: T;
  revision: number;
  /** The group offset of this change. */
  offset: number;
  timestampMs: number;
  /** Present (true) on the delete that removed an item because its `ttlMs` ran out (Subscribe transports only). */
  expired?: true;
}

/** A transient event from `Send`. */
export interface ViewEvent {
  type: string;
  itemId: string | undefined;
  data: JsonValue;
  /** The group offset when it was sent (events do not advance it). */
  offset: number;
  timestampMs: number;
}

export interface ViewReset {
  /**
   * `history`: the server no longer held every change since the view's offset (it keeps a
   * bounded history per group); `offset`: the server's offset is behind the view's (its
   * store is not the one the view came from); `resync`: an item view found its item
   * changed while it was disconnected.
   */
  reason: "history" | "offset" | "resync";
  message: string;
  /** The offset the view was rebuilt at. */
  offset: number;
  /** The offset it had before. */
  previousOffset: number | undefined;
}

/** `connecting` until first live; `reconnecting` while a lost stream is re-established; `closed` for good. */
export type ViewStatus = "connecting" | "live" | "reconnecting" | "closed";

export type ViewUpdate<T = JsonValue> =
  | { kind: "change"; change: ViewChange<T> }
  | { kind: "event"; event: ViewEvent }
  | { kind: "reset"; reset: ViewReset }
  | { kind: "status"; status: ViewStatus; error: StreamError | undefined };

interface ViewEvents<T> {
  change: ViewChange<T>;
  event: ViewEvent;
  reset: ViewReset;
  status: ViewStatus;
}

/** @internal What every transport delivers, in its wire-neutral form. */
export type ViewMessage =
  | { kind: "snapshot"; items: Array<{ itemId: string; data: JsonValue; revision: number; updatedAtMs: number }>; offset: number; more: boolean }
  | {
      kind: "change";
      type: ChangeType;
      itemId: string;
      /** Ignored when `ops` is set. */
      data: JsonValue;
      /** A delta: the new value is these ops applied to the item at `revision - 1`. */
      ops?: readonly UpdateOp[];
      revision: number;
      offset: number;
      timestampMs: number;
      expired?: true;
    }
  | { kind: "event"; type: string; itemId: string | undefined; data: JsonValue; offset: number; timestampMs: number }
  | { kind: "heartbeat"; offset: number };

/** @internal What a transport does after a message: nothing, restart its stream, or end the view. */
export type Verdict = undefined | { restart: "resume" | "fresh"; why: string } | { fail: StreamError };

export interface ViewTarget {
  streamName: string;
  groupId: string;
  itemId: string | undefined;
}

export class LiveView<T = JsonValue> {
  /** The items, in the group's insertion order (an update keeps an item's place), as `List` returns them. */
  readonly items: ReadonlyMap<string, ViewItem<T>> = new Map();
  private _offset: number | undefined;
  private _status: ViewStatus = "connecting";
  private _error: StreamError | undefined;
  /** A snapshot's chunks so far, with each item's value as received beside it (see rawValues). */
  private chunks: { offset: number; items: Array<[string, ViewItem<T>]>; raw: JsonValue[] } | undefined;
  /** Whether the current stream has delivered something consistent yet. */
  private streamLive = false;
  private forceFresh = false;
  private readonly listeners = new Map<keyof ViewEvents<T>, Set<(value: never) => void>>();
  private readonly iterators = new Set<UpdateQueue<T>>();
  private readonly parseValue: ((value: JsonValue) => T) | undefined;
  /** The items' values as received, which deltas apply to, kept apart only when `parse` makes `items` hold something else. */
  private readonly rawValues: Map<string, JsonValue> | undefined;
  private readonly deltasWanted: boolean;
  /** Until a snapshot: a view started from `fromOffset` lacks the items that did not change since, which deltas could apply to. */
  private partialCopy: boolean;
  /** The next stream goes without deltas: a delta did not fit the copy, so the item comes whole. */
  private plainNext = false;
  private readonly closers: Array<() => void> = [];
  private readyWaiters: Array<{ resolve: () => void; reject: (error: StreamError) => void }> = [];

  /** @internal */
  constructor(
    readonly target: ViewTarget,
    options: WatchOptions<T>,
    /** @internal Told when a stream proves the connection works. */
    private readonly onLive: () => void,
  ) {
    if (options.fromOffset !== undefined) {
      if (!Number.isSafeInteger(options.fromOffset) || options.fromOffset < 0) {
        throw new StreamError(ErrorCode.InvalidArgument, `fromOffset must be a non-negative integer, got ${JSON.stringify(options.fromOffset)}`);
      }
      this._offset = options.fromOffset;
    }
    const parse = options.parse;
    this.parseValue = parse === undefined ? undefined : typeof parse === "function" ? parse : (value) => parse.parse(value);
    this.rawValues = parse === undefined ? undefined : new Map();
    this.deltasWanted = options.deltas ?? true;
    this.partialCopy = options.fromOffset !== undefined;
    const signal = options.signal;
    if (signal) {
      if (signal.aborted) queueMicrotask(() => this.close());
      else {
        const abort = () => this.close();
        signal.addEventListener("abort", abort, { once: true });
        this.closers.push(() => signal.removeEventListener("abort", abort));
      }
    }
  }

  /** The group offset the view reflects; undefined before the first snapshot. */
  get offset(): number | undefined {
    return this._offset;
  }

  get status(): ViewStatus {
    return this._status;
  }

  /** Why the view closed, when an error closed it. */
  get error(): StreamError | undefined {
    return this._error;
  }

  /** Listens for `change`, `event`, `reset` or `status`; returns the function that stops listening. */
  on<K extends keyof ViewEvents<T>>(type: K, listener: (value: ViewEvents<T>[K]) => void): () => void {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(listener as (value: never) => void);
    return () => set.delete(listener as (value: never) => void);
  }

  /**
   * Resolves once the view is first live (its copy is complete); rejects with the error
   * that closed it before that, or `unavailable` when it was closed first.
   */
  ready(): Promise<void> {
    if (this._status === "live" || (this._status === "reconnecting" && this._offset !== undefined)) return Promise.resolve();
    if (this._status === "closed") return Promise.reject(this._error ?? new StreamError(ErrorCode.Unavailable, "the view was closed"));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /**
   * Every update from now on, in order. The iteration ends when the view is closed, and
   * throws the error that closed it. Updates wait in memory until taken.
   */
  [Symbol.asyncIterator](): AsyncIterator<ViewUpdate<T>> {
    const queue = new UpdateQueue<T>(() => this.iterators.delete(queue));
    if (this._status === "closed") queue.end(this._error);
    else this.iterators.add(queue);
    return queue;
  }

  /** Stops watching. The items stay as they were. */
  close(): void {
    this.end(undefined);
  }

  /** @internal Registers what `close` must stop (the transport's stream). */
  onClose(closer: () => void): void {
    if (this._status === "closed") closer();
    else this.closers.push(closer);
  }

  /** @internal */
  get closed(): boolean {
    return this._status === "closed";
  }

  /**
   * @internal The `from_offset` of the next stream. A group view resumes from one before
   * its offset, so that the server's first message repeats the last applied change
   * (skipped) and proves at once that the stream is live, even on a quiet group. An item
   * view subscribes afresh: one item's snapshot is small and proves the same.
   */
  resumeFrom(): number | undefined {
    if (this.forceFresh || this._offset === undefined || this.target.itemId !== undefined || this._offset === 0) return undefined;
    return this._offset - 1;
  }

  /** @internal Whether the next stream asks for deltas (and this stream's delta fallback is spent). */
  takeDeltas(): boolean {
    const plain = this.plainNext;
    this.plainNext = false;
    return this.deltasWanted && !plain && !this.partialCopy;
  }

  /** @internal The next stream goes without deltas (this one brought a delta the client cannot read). */
  skipDeltas(): void {
    this.plainNext = true;
  }

  /** @internal A new stream starts: what was half received on the old one is dropped. */
  begin(): void {
    this.chunks = undefined;
    this.streamLive = false;
    this.forceFresh = false;
  }

  /** @internal The stream was lost; the transport is about to reconnect. */
  lost(fresh = false): void {
    this.forceFresh ||= fresh;
    if (this._status === "live") this.setStatus("reconnecting");
  }

  /** @internal Ends the view with an error no retry can fix. */
  fail(error: StreamError): void {
    this.end(error);
  }

  /** @internal Applies one message of the current stream. */
  receive(message: ViewMessage): Verdict {
    try {
      return this.apply(message);
    } catch (error) {
      if (error instanceof StreamError) return { fail: error };
      return { fail: new StreamError(ErrorCode.InvalidArgument, `parse refused a value: ${(error as Error).message ?? String(error)}`) };
    }
  }

  private apply(message: ViewMessage): Verdict {
    switch (message.kind) {
      case "snapshot": {
        if (this.chunks && this.chunks.offset !== message.offset) {
          return { restart: "resume", why: `snapshot chunk at offset ${message.offset} after chunks at ${this.chunks.offset}` };
        }
        const chunks = (this.chunks ??= { offset: message.offset, items: [], raw: [] });
        for (const item of message.items) {
          chunks.items.push([item.itemId, { data: this.parse(item.data), revision: item.revision, updatedAtMs: item.updatedAtMs }]);
          if (this.rawValues) chunks.raw.push(item.data);
        }
        if (message.more) return undefined;
        this.chunks = undefined;
        this.replace(chunks.items, message.offset);
        if (this.rawValues) {
          this.rawValues.clear();
          chunks.items.forEach(([itemId], index) => this.rawValues!.set(itemId, chunks.raw[index]));
        }
        this.partialCopy = false;
        return this.live();
      }
      case "change": {
        if (this.chunks || this._offset === undefined) return { restart: "resume", why: `change at offset ${message.offset} before the snapshot was complete` };
        if (message.offset <= this._offset) return this.live(); // already applied: a resume repeats the last change
        if (this.target.itemId === undefined && message.offset !== this._offset + 1) {
          return { restart: "resume", why: `change at offset ${message.offset} after offset ${this._offset}: a gap` };
        }
        const items = this.items as Map<string, ViewItem<T>>;
        let raw = message.data;
        if (message.ops !== undefined) {
          const applied = this.applyDelta(message.itemId, message.type, message.revision, message.ops);
          if (applied === undefined) {
            this.plainNext = true;
            return { restart: "resume", why: `the delta of item ${JSON.stringify(message.itemId)} at revision ${message.revision} does not fit the view's copy` };
          }
          raw = applied;
        }
        const data = this.parse(raw);
        if (message.type === "delete") {
          items.delete(message.itemId);
          this.rawValues?.delete(message.itemId);
        } else {
          if (message.type === "create") items.delete(message.itemId);
          items.set(message.itemId, { data, revision: message.revision, updatedAtMs: message.timestampMs });
          this.rawValues?.set(message.itemId, raw);
        }
        this._offset = message.offset;
        const verdict = this.live();
        const { kind: _, ops: __, ...change } = message;
        this.publish("change", { ...change, data });
        return verdict;
      }
      case "event": {
        if (this.chunks || this._offset === undefined) return { restart: "resume", why: "an event before the snapshot was complete" };
        const verdict = this.live();
        const { kind: _, ...event } = message;
        this.publish("event", event);
        return verdict;
      }
      case "heartbeat": {
        if (this.chunks || this._offset === undefined) return { restart: "resume", why: "a heartbeat before the snapshot was complete" };
        if (this.target.itemId !== undefined) this._offset = Math.max(this._offset, message.offset);
        else if (message.offset > this._offset) return { restart: "resume", why: `heartbeat at offset ${message.offset} after offset ${this._offset}: a gap` };
        else if (message.offset < this._offset) return { restart: "fresh", why: `the server's offset ${message.offset} is behind the view's ${this._offset}` };
        return this.live();
      }
    }
  }

  /**
   * The value a delta gives, or undefined when it cannot be applied: the copy must hold the
   * item at the revision just before, and every op must apply (the server left out those
   * that did not), or the copy is not the value the server changed.
   */
  private applyDelta(itemId: string, type: ChangeType, revision: number, ops: readonly UpdateOp[]): JsonValue | undefined {
    const item = (this.items as Map<string, ViewItem<T>>).get(itemId);
    if (type !== "update" || item === undefined || item.revision !== revision - 1) return undefined;
    const base = this.rawValues ? this.rawValues.get(itemId) : (item.data as JsonValue);
    if (base === undefined) return undefined;
    const outcome = applyUpdateOps(base, ops);
    return outcome.errors.length === 0 ? outcome.value : undefined;
  }

  /** A complete snapshot replaces the copy; a copy the view had before makes it a reset. */
  private replace(entries: Array<[string, ViewItem<T>]>, offset: number): void {
    const items = this.items as Map<string, ViewItem<T>>;
    const previousOffset = this._offset;
    const differs = previousOffset !== undefined && (offset !== previousOffset || !sameItems(items, entries));
    items.clear();
    for (const [itemId, item] of entries) items.set(itemId, item);
    this._offset = offset;
    if (!differs) return;
    const reset: ViewReset =
      this.target.itemId !== undefined
        ? { reason: "resync", message: `the item changed while the view was disconnected; resynced at offset ${offset}`, offset, previousOffset }
        : offset < previousOffset
          ? { reason: "offset", message: `the server's offset ${offset} is behind the view's ${previousOffset}: rebuilt from its snapshot`, offset, previousOffset }
          : {
              reason: "history",
              message: `the server no longer holds every change after offset ${previousOffset}: rebuilt from a snapshot at offset ${offset}`,
              offset,
              previousOffset,
            };
    this.publish("reset", reset);
  }

  private live(): Verdict {
    if (!this.streamLive) {
      this.streamLive = true;
      this.onLive();
    }
    if (this._status !== "live") {
      this.setStatus("live");
      for (const waiter of this.readyWaiters) waiter.resolve();
      this.readyWaiters = [];
    }
    return undefined;
  }

  private parse(value: JsonValue): T {
    return this.parseValue ? this.parseValue(value) : (value as T);
  }

  private setStatus(status: ViewStatus): void {
    this._status = status;
    this.publish("status", status);
  }

  private end(error: StreamError | undefined): void {
    if (this._status === "closed") return;
    this._error = error;
    this.setStatus("closed");
    for (const closer of this.closers.splice(0)) closer();
    for (const queue of this.iterators) queue.end(error);
    this.iterators.clear();
    for (const waiter of this.readyWaiters) waiter.reject(error ?? new StreamError(ErrorCode.Unavailable, "the view was closed"));
    this.readyWaiters = [];
  }

  private publish<K extends keyof ViewEvents<T>>(type: K, value: ViewEvents<T>[K]): void {
    for (const listener of this.listeners.get(type) ?? []) {
      try {
        (listener as (value: ViewEvents<T>[K]) => void)(value);
      } catch (error) {
        // A listener's bug must not stop the view; it still surfaces, as an uncaught error.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
    if (this.iterators.size === 0) return;
    const update = toUpdate<T>(type, value, this._error);
    for (const queue of this.iterators) queue.push(update);
  }
}

function toUpdate<T>(type: keyof ViewEvents<T>, value: unknown, error: StreamError | undefined): ViewUpdate<T> {
  switch (type) {
    case "change":
      return { kind: "change", change: value as ViewChange<T> };
    case "event":
      return { kind: "event", event: value as ViewEvent };
    case "reset":
      return { kind: "reset", reset: value as ViewReset };
    case "status":
      return { kind: "status", status: value as ViewStatus, error };
  }
}

function sameItems<T>(items: Map<string, ViewItem<T>>, entries: Array<[string, ViewItem<T>]>): boolean {
  if (items.size !== entries.length) return false;
  let index = 0;
  for (const [itemId, item] of items) {
    const [otherId, other] = entries[index++];
    if (itemId !== otherId || item.revision !== other.revision) return false;
  }
  return true;
}

/** One `for await` over a view: updates queue here until taken. */
class UpdateQueue<T> implements AsyncIterator<ViewUpdate<T>> {
  private readonly buffered: ViewUpdate<T>[] = [];
  private waiting: { resolve: (result: IteratorResult<ViewUpdate<T>>) => void; reject: (error: unknown) => void } | undefined;
  private ended = false;
  private error: StreamError | undefined;

  constructor(private readonly detach: () => void) {}

  push(update: ViewUpdate<T>): void {
    if (this.waiting) {
      const { resolve } = this.waiting;
      this.waiting = undefined;
      resolve({ value: update, done: false });
    } else this.buffered.push(update);
  }

  end(error: StreamError | undefined): void {
    this.ended = true;
    this.error = error;
    if (!this.waiting) return;
    const waiting = this.waiting;
    this.waiting = undefined;
    if (error) waiting.reject(error);
    else waiting.resolve({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<ViewUpdate<T>>> {
    const update = this.buffered.shift();
    if (update) return Promise.resolve({ value: update, done: false });
    if (this.ended) {
      const error = this.error;
      this.error = undefined;
      return error ? Promise.reject(error) : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  return(): Promise<IteratorResult<ViewUpdate<T>>> {
    this.ended = true;
    this.buffered.length = 0;
    this.detach();
    return Promise.resolve({ value: undefined, done: true });
  }
}
