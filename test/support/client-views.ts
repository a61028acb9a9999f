import { expect } from "vitest";
import type { LiveView, StreamClient } from "../../src/client/node.js";
import type { JsonValue } from "../../src/index.js";

/**
 * Watches what a live view reports and checks, as it goes, the view's promises: every
 * change follows the one before by exactly one offset (a group view) or by a larger
 * offset (an item view), none twice, none out of order; a reset restarts the count at
 * its offset. Breaks are written down in `problems`, for one assertion at the end.
 */
export class ViewRecorder {
  readonly problems: string[] = [];
  changes = 0;
  resets: string[] = [];
  private previous: number | undefined;

  constructor(readonly view: LiveView) {
    const contiguous = view.target.itemId === undefined;
    view.on("status", (status) => {
      if (status === "live" && this.previous === undefined) this.previous = view.offset;
    });
    view.on("reset", (reset) => {
      this.resets.push(reset.reason);
      this.previous = reset.offset;
    });
    view.on("change", (change) => {
      this.changes++;
      const previous = this.previous;
      if (previous === undefined) this.problem(`change ${change.offset} before the view was live`);
      else if (contiguous ? change.offset !== previous + 1 : change.offset <= previous) this.problem(`change ${change.offset} after ${previous}`);
      this.previous = change.offset;
    });
  }

  private problem(text: string): void {
    if (this.problems.length < 20) this.problems.push(text);
  }
}

/** Every item of a group, by `List`, as the view holds them: [id, {data, revision}] in order. */
export async function listed(client: StreamClient, stream: string, group: string): Promise<Array<[string, { data: JsonValue; revision: number }]>> {
  const rows: Array<[string, { data: JsonValue; revision: number }]> = [];
  for await (const page of client.list(stream, group)) for (const item of page) rows.push([item.itemId, { data: item.data, revision: item.revision }]);
  return rows;
}

export function viewed(view: LiveView): Array<[string, { data: JsonValue; revision: number }]> {
  return [...view.items].map(([itemId, item]) => [itemId, { data: item.data, revision: item.revision }]);
}

/** A group's current offset: deleting a missing item changes nothing and answers with it. */
export async function groupOffset(client: StreamClient, stream: string, group: string): Promise<number> {
  return (await client.delete(stream, group, "never-written")).offset;
}

/** Waits until the view is live at the group's offset, then checks it equals List. */
export async function expectConverged(view: LiveView, reader: StreamClient, timeoutMs = 20_000): Promise<void> {
  const offset = await groupOffset(reader, view.target.streamName, view.target.groupId);
  await expect.poll(() => view.status === "live" && view.offset === offset, { timeout: timeoutMs, interval: 20 }).toBe(true);
  const { streamName, groupId } = view.target;
  expect(viewed(view)).toEqual(await listed(reader, streamName, groupId));
}

/**
 * Concurrent writers on their own items of `groups`, each waiting for its reply, until
 * `stop()`; they keep each group's highest acknowledged offset.
 */
export function startWriters(client: StreamClient, stream: string, groups: string[], writers: number, itemsPerWriter = 5) {
  const offsets = new Map<string, number>(groups.map((group) => [group, 0]));
  let running = true;
  let writes = 0;
  const note = (group: string, offset: number) => offsets.set(group, Math.max(offsets.get(group)!, offset));
  const loops = Array.from({ length: writers }, async (_, w) => {
    for (let n = 0; running; n++) {
      const group = groups[(w + n) % groups.length];
      const item = `w${w}-${n % itemsPerWriter}`;
      const choice = Math.random();
      try {
        if (choice < 0.5) note(group, (await client.set(stream, group, item, { w, n, text: "x".repeat(n % 7) })).offset);
        else if (choice < 0.8) note(group, (await client.update(stream, group, item, [{ type: "set", path: ["n"], value: n }])).offset);
        else note(group, (await client.delete(stream, group, item)).offset);
        writes++;
      } catch {
        // The server may be down (a restart): the writer tries again.
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  });
  return {
    offsets,
    get writes() {
      return writes;
    },
    async stop(): Promise<void> {
      running = false;
      await Promise.all(loops);
    },
  };
}
