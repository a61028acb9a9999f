/** One item's expiry as the memory adapter indexes it. */
export interface ExpiryEntry {
  streamName: string;
  groupId: string;
  itemId: string;
  /** The incarnation the expiry belongs to: a re-created item with the same id is another one. */
  createdOffset: number;
  expiresAtMs: number;
}

/** Entries the heap may hold before its first compaction. */
const MIN_COMPACTION_SIZE = 1024;

/**
 * The memory adapter's index of expiries: a binary min-heap on expiry time. Entries are
 * never removed when their item is rewritten or deleted; they go stale instead, and
 * `isCurrent` drops them once they come up, which keeps every write O(log n) and never
 * searches the heap. So that an item rewritten often with a long time to live cannot
 * fill the heap with stale entries, it is rebuilt from its current entries whenever it
 * has doubled since the last rebuild (amortized O(1) per write).
 */
export class ExpiryQueue {
  private heap: ExpiryEntry[] = [];
  private compactAt = MIN_COMPACTION_SIZE;

  /** `isCurrent`: whether an entry still describes its item's expiry (the item exists, same incarnation and expiry). */
  constructor(private readonly isCurrent: (entry: ExpiryEntry) => boolean) {}

  get size(): number {
    return this.heap.length;
  }

  push(entry: ExpiryEntry): void {
    if (this.heap.length >= this.compactAt) this.compact();
    this.sift(entry);
  }

  private sift(entry: ExpiryEntry): void {
    const heap = this.heap;
    heap.push(entry);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (heap[parent].expiresAtMs <= entry.expiresAtMs) break;
      heap[index] = heap[parent];
      index = parent;
    }
    heap[index] = entry;
  }

  /**
   * Up to `limit` current entries due at `nowMs`, earliest first. Stale ones met on the
   * way are dropped; the current ones stay queued until their item is gone, so that an
   * item whose removal failed is listed again.
   */
  due(nowMs: number, limit: number): ExpiryEntry[] {
    const found: ExpiryEntry[] = [];
    while (found.length < limit && this.heap.length > 0 && this.heap[0].expiresAtMs <= nowMs) {
      const entry = this.pop();
      if (this.isCurrent(entry)) found.push(entry);
    }
    for (const entry of found) this.sift(entry);
    return found;
  }

  /** Keeps only the current entries; the next rebuild comes when the heap has doubled again. */
  private compact(): void {
    const current = this.heap.filter(this.isCurrent);
    this.heap = [];
    for (const entry of current) this.sift(entry);
    this.compactAt = Math.max(MIN_COMPACTION_SIZE, 2 * this.heap.length);
  }

  private pop(): ExpiryEntry {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      let index = 0;
      for (;;) {
        const left = 2 * index + 1;
        if (left >= heap.length) break;
        const right = left + 1;
        const child = right < heap.length && heap[right].expiresAtMs < heap[left].expiresAtMs ? right : left;
        if (heap[child].expiresAtMs >= last.expiresAtMs) break;
        heap[index] = heap[child];
        index = child;
      }
      heap[index] = last;
    }
    return top;
  }
}
