/**
 * A set of names that pages in UTF-8 byte order (the order of compareBytes) without
 * sorting the whole set for every page: a stream of a million groups is listed a
 * thousand names at a time.
 *
 * Adding and removing cost O(1): a name goes into `pending` (not yet in the sorted
 * array) or `removed` (still in it, to be skipped). A page merges the sorted array
 * with the sorted pending names from a binary-searched start. Once the two sets grow
 * past a sixteenth of the array, the next page folds them in with one linear merge,
 * so a fold's cost is spread over the changes that caused it, and a page never sorts
 * more than that sixteenth (and only when names were added since the last page).
 *
 * Inside, names are kept as sort keys (see sortKey) that JavaScript's own string
 * comparison puts in byte order: sorting a million of them with the built-in order
 * takes well under a second, where a comparator function took several.
 */
export class SortedNames {
  private sorted: string[] = [];
  /** Keys of `sorted` that were removed since the last fold. */
  private readonly removed = new Set<string>();
  /** Keys added since the last fold; never in `sorted` at the same time. */
  private readonly pending = new Set<string>();
  /** `pending` in order, built when a page needs it and dropped when `pending` changes. */
  private pendingSorted: string[] | undefined;

  get size(): number {
    return this.sorted.length - this.removed.size + this.pending.size;
  }

  add(name: string): void {
    const key = sortKey(name);
    if (this.removed.delete(key)) return;
    if (this.pending.has(key) || this.isSorted(key)) return;
    this.pending.add(key);
    this.pendingSorted = undefined;
  }

  delete(name: string): void {
    const key = sortKey(name);
    if (this.pending.delete(key)) {
      this.pendingSorted = undefined;
      return;
    }
    if (this.isSorted(key)) this.removed.add(key);
  }

  /** At most `limit` names sorting after `after` (from the first when undefined), in order. */
  page(after: string | undefined, limit: number): string[] {
    if (this.pending.size + this.removed.size > 64 + this.sorted.length / 16) this.fold();
    const sorted = this.sorted;
    const pending = (this.pendingSorted ??= [...this.pending].sort());
    const afterKey = after === undefined ? undefined : sortKey(after);
    let i = afterKey === undefined ? 0 : firstAfter(sorted, afterKey);
    let j = afterKey === undefined ? 0 : firstAfter(pending, afterKey);
    const page: string[] = [];
    while (page.length < limit) {
      while (i < sorted.length && this.removed.has(sorted[i])) i++;
      const fromSorted = sorted[i];
      const fromPending = pending[j];
      if (fromSorted === undefined && fromPending === undefined) break;
      if (fromPending === undefined || (fromSorted !== undefined && fromSorted < fromPending)) {
        page.push(nameOf(fromSorted));
        i++;
      } else {
        page.push(nameOf(fromPending));
        j++;
      }
    }
    return page;
  }

  private isSorted(key: string): boolean {
    const index = firstAfter(this.sorted, key) - 1;
    return index >= 0 && this.sorted[index] === key;
  }

  /** Merges the pending keys into the sorted array and drops the removed ones, in one pass. */
  private fold(): void {
    const pending = (this.pendingSorted ??= [...this.pending].sort());
    const merged: string[] = [];
    let j = 0;
    for (const key of this.sorted) {
      if (this.removed.has(key)) continue;
      while (j < pending.length && pending[j] < key) merged.push(pending[j++]);
      merged.push(key);
    }
    while (j < pending.length) merged.push(pending[j++]);
    this.sorted = merged;
    this.removed.clear();
    this.pending.clear();
    this.pendingSorted = [];
  }
}

/** Index of the first key of a sorted array above `key`. */
function firstAfter(sorted: readonly string[], key: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (sorted[middle] <= key) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** A UTF-16 unit from U+D800 up: the only ones whose order differs from the bytes'. */
const HIGH_UNIT = /[\uD800-\uFFFF]/;
const HIGH_UNITS = /[\uD800-\uFFFF]/g;

/**
 * A string whose UTF-16 order is the name's UTF-8 byte order (code point order, as
 * names are well-formed: checkName). UTF-16 already sorts by code point except that
 * surrogates (code points above U+FFFF) must come after U+E000..U+FFFF: the key moves
 * surrogates up to U+F800.. and those units down to U+D800.., keeping each range's own
 * order. The move is one-to-one, so nameOf undoes it. Most names have no unit in these
 * ranges and are their own key.
 */
function sortKey(name: string): string {
  return HIGH_UNIT.test(name) ? name.replace(HIGH_UNITS, (unit) => String.fromCharCode(moveUp(unit.charCodeAt(0)))) : name;
}

function nameOf(key: string): string {
  return HIGH_UNIT.test(key) ? key.replace(HIGH_UNITS, (unit) => String.fromCharCode(moveBack(unit.charCodeAt(0)))) : key;
}

function moveUp(unit: number): number {
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800;
}

function moveBack(unit: number): number {
  return unit < 0xf800 ? unit + 0x800 : unit - 0x2000;
}
