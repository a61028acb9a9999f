import { isExpired, type ItemStore } from "./item-store.js";
import type { ItemChange, StoredItem } from "./model.js";
import { itemBytes } from "./encoded-size.js";

/** One chunk of a group's snapshot, as every subscriber of a session receives it. */
export interface SnapshotChunk {
  /** In insertion order, as they were at `offset`. */
  items: StoredItem[];
  /** The offset the whole snapshot reflects, the same in every chunk. */
  offset: number;
  /** Whether chunks follow (read them with `chunk(next)`). */
  more: boolean;
  /** Where the next chunk starts: the created offset of this chunk's last item. */
  next: number;
  /** The estimated encoded size of `items` (see encoded-size.ts), summed while the chunk was cut. */
  bytes: number;
}

/** Items asked of the store per read: a bound for groups of tiny items, where the byte bound alone would read many. */
const MAX_ITEMS_PER_READ = 10_000;
/**
 * Chunks a session keeps for subscribers that joined together and read at about the
 * same pace, so that each chunk is read and encoded once for all of them. A subscriber
 * that falls further behind reads its chunk again (same content, see `read`).
 */
const CACHED_CHUNKS = 4;

/**
 * The snapshot of one group at one offset, read page by page while writers go on, for
 * every subscriber that joined the group at that offset.
 *
 * Nothing is held for the whole group: each chunk is one page read from the store when
 * a subscriber is ready for it. Pages are read later than the snapshot's offset O, so
 * an item may have changed since; the session therefore watches the group's changes
 * after O (the group feed passes them on) and keeps, for every item that existed at O
 * and changed since, its state at O, which the first change after O tells:
 * its old value, revision and write time, and the incarnation (created offset) it
 * belonged to. A chunk covers a range of created offsets (insertion order) and holds:
 * - the page's items created at or before O, each as it was at O;
 * - the items of that range that existed at O but were deleted (or deleted and
 *   re-created) before the page was read, from their kept state at O;
 * and nothing created after O. Every item of the state at O falls in exactly one range,
 * so the chunks' union is that state exactly, whatever the writers did meanwhile. Before
 * a page is used, the session waits until it has seen every change up to the offset the
 * page was read at (on a store that delivers changes asynchronously, they may still be
 * in transit).
 */
export class SnapshotSession {
  private snapshotOffset: number | undefined;
  /** Changes seen before the first page told the snapshot's offset. */
  private early: ItemChange[] = [];
  /** Items that existed at the offset and changed since, as they were at the offset. */
  private readonly atOffset = new Map<string, StoredItem>();
  /** Items whose first change after the offset has been seen (a create: not in the state at the offset). */
  private readonly changedSince = new Set<string>();
  /** The offset of the last change seen. */
  private seen: number;
  private waiters: Array<{ offset: number; resolve: () => void }> = [];
  private readonly chunks = new Map<number, Promise<SnapshotChunk>>();
  private readers = 0;
  private closed = false;

  constructor(
    private readonly store: ItemStore,
    readonly streamName: string,
    readonly groupId: string,
    /** The feed's offset when the session starts: every later change reaches `observe`. */
    feedOffset: number,
    /** Most estimated bytes of items per chunk (see encoded-size.ts); an item larger than that is a chunk of its own. */
    private readonly chunkBytes: number,
    /** Called when the last reader has released the session. */
    private readonly onClose: () => void,
  ) {
    this.seen = feedOffset;
  }

  /** The offset the snapshot reflects, once its first page has been read. */
  get offset(): number | undefined {
    return this.snapshotOffset;
  }

  /**
   * Whether a subscriber joining the group now may share this session: only when no
   * change has come since the session started (or since its offset), so the joiner,
   * which receives every change from now on, misses none after the offset.
   */
  get joinable(): boolean {
    if (this.closed) return false;
    return this.snapshotOffset === undefined ? this.early.length === 0 : this.seen === this.snapshotOffset;
  }

  acquire(): void {
    this.readers++;
  }

  /** A subscriber is done with the session; the last one closes it. */
  release(): void {
    if (--this.readers > 0) return;
    this.closed = true;
    this.chunks.clear();
    this.atOffset.clear();
    this.changedSince.clear();
    this.early = [];
    for (const waiter of this.waiters.splice(0)) waiter.resolve();
    this.onClose();
  }

  /** Every change of the group, in offset order, from the feed. */
  observe(change: ItemChange): void {
    if (this.closed) return;
    this.seen = change.offset;
    if (this.snapshotOffset === undefined) this.early.push(change);
    else if (change.offset > this.snapshotOffset) this.record(change);
    if (this.waiters.length > 0) {
      const due = this.waiters.filter((waiter) => waiter.offset <= this.seen);
      this.waiters = this.waiters.filter((waiter) => waiter.offset > this.seen);
      for (const waiter of due) waiter.resolve();
    }
  }

  /** The chunk that starts after created offset `after` (0: the first chunk). */
  chunk(after: number): Promise<SnapshotChunk> {
    let chunk = this.chunks.get(after);
    if (chunk) return chunk;
    chunk = this.read(after);
    this.chunks.set(after, chunk);
    // A failed read is not kept: the next subscriber tries again.
    chunk.catch(() => this.chunks.delete(after));
    if (this.chunks.size > CACHED_CHUNKS) this.chunks.delete(this.chunks.keys().next().value!);
    return chunk;
  }

  private async read(after: number): Promise<SnapshotChunk> {
    const page = await this.store.readItems(this.streamName, this.groupId, {
      afterCreatedOffset: after,
      maxItems: MAX_ITEMS_PER_READ,
      maxBytes: this.chunkBytes,
    });
    if (this.snapshotOffset === undefined) this.setOffset(page.offset);
    await this.until(page.offset);
    const offset = this.snapshotOffset!;

    // The page's items that existed at the offset, and whether the page went past it.
    const present = new Map<string, number>();
    const candidates: StoredItem[] = [];
    let pastOffset = false;
    for (const item of page.items) {
      if (item.createdOffset > offset) {
        pastOffset = true;
        break;
      }
      present.set(item.itemId, item.createdOffset);
      candidates.push(this.atOffset.get(item.itemId) ?? item);
    }
    // The range this page covers ends at its last item, unless nothing older than the offset follows.
    const rangeEnd = pastOffset || !page.more ? Infinity : page.items.at(-1)!.createdOffset;
    for (const item of this.atOffset.values()) {
      if (item.createdOffset > after && item.createdOffset <= rangeEnd && present.get(item.itemId) !== item.createdOffset) {
        candidates.push(item);
      }
    }
    candidates.sort((a, b) => a.createdOffset - b.createdOffset);

    const items: StoredItem[] = [];
    let bytes = 0;
    // An item expired by now is left out though it existed at the offset: a snapshot
    // never shows one, and its DELETE change (expired) follows when it is removed.
    const now = Date.now();
    for (const item of candidates) {
      if (isExpired(item, now)) continue;
      const size = itemBytes(item);
      if (items.length > 0 && bytes + size > this.chunkBytes) {
        return { items, offset, more: true, next: items.at(-1)!.createdOffset, bytes };
      }
      items.push(item);
      bytes += size;
    }
    const next = items.at(-1)?.createdOffset ?? after;
    return { items, offset, more: rangeEnd !== Infinity, next: rangeEnd === Infinity ? next : rangeEnd, bytes };
  }

  private setOffset(offset: number): void {
    this.snapshotOffset = offset;
    for (const change of this.early) if (change.offset > offset) this.record(change);
    this.early = [];
  }

  /** Keeps the state at the offset of an item that changes for the first time since. */
  private record(change: ItemChange): void {
    if (this.changedSince.has(change.itemId)) return;
    this.changedSince.add(change.itemId);
    // Created after the offset: not part of the state at the offset, nor is anything it becomes.
    if (change.type === "create") return;
    const deleted = change.type === "delete";
    this.atOffset.set(change.itemId, {
      itemId: change.itemId,
      data: deleted ? change.data : change.oldValue!,
      revision: deleted ? change.revision : change.revision - 1,
      createdOffset: change.createdOffset,
      // Changes stored before the field existed lack it: the change's time is the closest known.
      updatedAtMs: change.oldUpdatedAtMs ?? change.timestampMs,
      // Removed for its expiry: expired no later than that.
      ...(change.expired ? { expiresAtMs: change.timestampMs } : {}),
    });
  }

  /** Resolves once every change up to `offset` has been observed (or the session closed). */
  private until(offset: number): Promise<void> {
    if (this.seen >= offset || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ offset, resolve }));
  }
}
