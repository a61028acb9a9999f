import type { StoredItem } from "../../core/model.js";

/**
 * A group's items in created-offset order, so that a page starting after a created
 * offset is found by binary search instead of walking the group from its first item:
 * paging through 100,000 items stays linear overall.
 *
 * Created offsets only grow, so a new item is appended. A deleted item leaves its
 * created offset behind as a number (no object, no value kept alive), which keeps the
 * array sorted for the search. The holes are squeezed out once they outnumber the items,
 * so the array stays within about twice the group's size (a full paging pass skips at
 * most about as many holes as it returns items) and each squeeze is paid for by the
 * deletes before it.
 */
export class InsertionOrder {
  private entries: Array<StoredItem | number> = [];
  private holes = 0;

  append(item: StoredItem): void {
    this.entries.push(item);
  }

  /** Puts the new state of an item (same created offset) in the old one's place. */
  replace(item: StoredItem): void {
    this.entries[this.indexOf(item.createdOffset)] = item;
  }

  remove(createdOffset: number): void {
    this.entries[this.indexOf(createdOffset)] = createdOffset;
    this.holes++;
    if (this.holes === this.entries.length) {
      this.entries = [];
      this.holes = 0;
    } else if (this.holes > 32 && this.holes * 2 > this.entries.length) {
      this.entries = this.entries.filter((entry) => typeof entry !== "number");
      this.holes = 0;
    }
  }

  /**
   * The items created after `afterCreatedOffset`, in order, up to `maxItems` or up to the
   * item that brings the page's size to `maxBytes` (see ItemPageRequest), and whether
   * more follow.
   */
  page(afterCreatedOffset: number, maxItems: number, maxBytes: number): { items: StoredItem[]; more: boolean } {
    const entries = this.entries;
    const items: StoredItem[] = [];
    let bytes = 0;
    for (let i = this.indexOf(afterCreatedOffset + 1); i < entries.length; i++) {
      const entry = entries[i];
      if (typeof entry === "number") continue;
      if (items.length > 0 && (items.length >= maxItems || bytes >= maxBytes)) return { items, more: true };
      items.push(entry);
      bytes += JSON.stringify(entry.data).length + entry.itemId.length;
    }
    return { items, more: false };
  }

  /** Index of the first entry created at or after `createdOffset`. */
  private indexOf(createdOffset: number): number {
    const entries = this.entries;
    let low = 0;
    let high = entries.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (offsetOf(entries[middle]) < createdOffset) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}

function offsetOf(entry: StoredItem | number): number {
  return typeof entry === "number" ? entry : entry.createdOffset;
}
