import { MemoryItemStore, type ItemPageRequest } from "../../src/index.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The memory adapter answers reads within the same tick, so no write could ever land
 * between a subscriber's registration and its snapshot, between two pages of it, nor
 * between a read and the engine seeing it. Real storage takes time both ways: this one
 * waits a moment before and after each read (the read itself stays consistent), so that
 * writes land on both sides of every seam.
 */
export class LaggingMemoryAdapter extends MemoryItemStore {
  override async readItems(streamName: string, groupId: string, page: ItemPageRequest) {
    await sleep(Math.random() * 4);
    const read = await super.readItems(streamName, groupId, page);
    await sleep(Math.random() * 4);
    return read;
  }

  override async snapshotItem(streamName: string, groupId: string, itemId: string) {
    await sleep(Math.random() * 4);
    const snapshot = await super.snapshotItem(streamName, groupId, itemId);
    await sleep(Math.random() * 4);
    return snapshot;
  }

  override async changesSince(streamName: string, groupId: string, afterOffset: number) {
    await sleep(Math.random() * 4);
    const changes = await super.changesSince(streamName, groupId, afterOffset);
    await sleep(Math.random() * 4);
    return changes;
  }
}

/** A small deterministic generator, so that a failing mix of operations can be replayed. */
export function seededRandom(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
