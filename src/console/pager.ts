/**
 * Pages of a server listing (`listAll`, `listGroups`) as the console shows them: a fixed
 * number of entries that match the filter, read from the server page after page only as
 * far as the page asked for needs (and one entry beyond, to know whether there is a next).
 */
export class Pager<T> {
  private readonly pages: T[][] = [];
  private readonly buffer: T[] = [];
  private readonly source: AsyncGenerator<T[]>;
  private done = false;

  constructor(
    open: () => AsyncGenerator<T[]>,
    private readonly matches: (entry: T) => boolean,
    readonly size = 100,
  ) {
    this.source = open();
  }

  /** The entries of page `index` (from 0) and whether another page follows. */
  async page(index: number): Promise<{ entries: T[]; hasNext: boolean }> {
    while (this.pages.length <= index) {
      await this.fillTo(this.size);
      if (this.buffer.length === 0) break;
      this.pages.push(this.buffer.splice(0, this.size));
    }
    await this.fillTo(1);
    return { entries: this.pages[index] ?? [], hasNext: this.pages.length > index + 1 || this.buffer.length > 0 };
  }

  close(): void {
    void this.source.return(undefined);
  }

  private async fillTo(count: number): Promise<void> {
    while (this.buffer.length < count && !this.done) {
      const next = await this.source.next();
      if (next.done) this.done = true;
      else this.buffer.push(...next.value.filter(this.matches));
    }
  }
}
