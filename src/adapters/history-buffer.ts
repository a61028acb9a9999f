import type { ItemChange } from "../core/model.js";

/**
 * The last `limit` changes of one group, contiguous by offset. Trimming drops a
 * chunk at a time so that appending stays O(1) amortised.
 */
export class HistoryBuffer {
  private changes: ItemChange[] = [];
  private start = 0;

  constructor(private readonly limit: number) {}

  push(change: ItemChange): void {
    this.changes.push(change);
    if (this.changes.length - this.start > this.limit) this.start++;
    if (this.start > 1024 && this.start * 2 > this.changes.length) {
      this.changes = this.changes.slice(this.start);
      this.start = 0;
    }
  }

  clear(): void {
    this.changes = [];
    this.start = 0;
  }

  /** Changes after `afterOffset`, or undefined when some of them were trimmed. */
  since(afterOffset: number, currentOffset: number): ItemChange[] | undefined {
    if (afterOffset > currentOffset) return undefined;
    if (afterOffset === currentOffset) return [];
    const first = this.changes[this.start];
    if (first === undefined || first.offset > afterOffset + 1) return undefined;
    return this.changes.slice(this.start + (afterOffset + 1 - first.offset));
  }
}
