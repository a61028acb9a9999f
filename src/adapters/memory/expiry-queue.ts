/** One item's expiry as the memory adapter indexes it. */
export interface ExpiryEntry {
  streamName: string;
  groupId: string;
  itemId: string;
  /** The incarnation the expiry belongs to: a re-created item with the same id is another one. */
  createdOffset: number;
  expiresAtMs: number;
}

/**
 * The memory adapter's index of expiries: a binary min-heap on expiry time. Entries are
 * never removed when their item is rewritten or deleted; they go stale instead, and the
 * owner's `isCurrent` check drops them once they come up, which keeps every write O(log n)
 * and never searches the heap.
 */
export class ExpiryQueue {
  private readonly heap: ExpiryEntry[] = [];

  get size(): number {
    return this.heap.length;
  }

  push(entry: ExpiryEntry): void {
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
  due(nowMs: number, limit: number, isCurrent: (entry: ExpiryEntry) => boolean): ExpiryEntry[] {
    const found: ExpiryEntry[] = [];
    while (found.length < limit && this.heap.length > 0 && this.heap[0].expiresAtMs <= nowMs) {
      const entry = this.pop();
      if (isCurrent(entry)) found.push(entry);
    }
    for (const entry of found) this.push(entry);
    return found;
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
