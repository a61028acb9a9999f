import type { NamePageRequest } from "../../core/model.js";
import type { KeyLayout } from "./key-layout.js";
import type { RedisClient } from "./scripts.js";

/**
 * The index behind ListGroups and ListAll, so that they never scan the keyspace: a ZSET
 * of stream names and, per stream, a ZSET of its group ids. Every score is 0, so Redis
 * orders members by their bytes (as compareBytes does) and ZRANGE BYLEX reads a page
 * after any name in O(log n + page) however many groups a stream has.
 *
 * On Redis Cluster these sets live in other slots than the groups they list, so the
 * commit script cannot update them in the same step. Instead the index may list more
 * than what exists, never less, and is corrected afterwards:
 * - A writer that creates an item adds the group before the commit (so a crash right
 *   after the commit still leaves it listed) and again after a commit that made the
 *   group non-empty (a reader may have dropped the entry in between, seeing the group
 *   still empty).
 * - Whoever finds a listed group empty (a reader paging, or the writer whose commit
 *   emptied it) removes it, then checks once more and puts it back if items arrived
 *   meanwhile: a writer's "after" add either came before the removal (then the second
 *   check sees its items) or after it.
 * - Streams work the same way one level up; a writer adds the group before the stream,
 *   so whoever finds a stream's group set non-empty after removing the stream puts it back.
 * So an entry outlives its group only when the writer that emptied it stopped between
 * its commit and the removal; the next reader paging over it drops it.
 */
export class GroupIndex {
  constructor(
    private readonly client: RedisClient,
    private readonly keys: KeyLayout,
  ) {}

  /** Records that the group has items, or is about to. */
  async add(streamName: string, groupId: string): Promise<void> {
    await this.client.zadd(this.keys.streamGroups(streamName), 0, groupId);
    await this.client.zadd(this.keys.streams, 0, streamName);
  }

  /** After a commit that emptied the group: drops its entry, and the stream's when it was the last. */
  async dropEmptied(streamName: string, groupId: string): Promise<void> {
    if (await this.repairGroup(streamName, groupId)) return;
    if ((await this.client.zcard(this.keys.streamGroups(streamName))) === 0) await this.repairStream(streamName);
  }

  /** A page of the stream's non-empty groups, in byte order; drops the entries of empty ones met on the way. */
  groups(streamName: string, page: NamePageRequest): Promise<string[]> {
    return this.readPage(this.keys.streamGroups(streamName), page, async (groupId) =>
      (await this.hasItems(streamName, groupId)) || this.repairGroup(streamName, groupId),
    );
  }

  /**
   * How many groups the stream's index lists: those with items, plus any whose emptying
   * writer stopped before dropping the entry and that no reader has paged over since.
   * Checking every entry instead would cost a command per group on each call.
   */
  count(streamName: string): Promise<number> {
    return this.client.zcard(this.keys.streamGroups(streamName));
  }

  /** A page of the streams with a non-empty group, in byte order; drops the entries of others met on the way. */
  streams(page: NamePageRequest): Promise<string[]> {
    return this.readPage(this.keys.streams, page, async (streamName) => {
      // Finding its first non-empty group also drops the empty ones sorting before it.
      if ((await this.groups(streamName, { after: undefined, limit: 1 })).length > 0) return true;
      await this.repairStream(streamName);
      return false;
    });
  }

  /**
   * Reads names after `page.after` until `page.limit` of them pass `live` or the index
   * ends: entries found dead are dropped on the way, and the page is short only at the end.
   */
  private async readPage(key: string, page: NamePageRequest, live: (name: string) => Promise<boolean>): Promise<string[]> {
    const limit = Math.max(1, Math.floor(page.limit));
    const found: string[] = [];
    // "(" makes the bound exclusive; "-" is below every name.
    let from = page.after === undefined ? "-" : `(${page.after}`;
    for (;;) {
      const wanted = limit - found.length;
      const listed = await this.client.zrange(key, from, "+", "BYLEX", "LIMIT", 0, wanted);
      const alive = await Promise.all(listed.map(live));
      for (const [i, name] of listed.entries()) if (alive[i]) found.push(name);
      if (listed.length < wanted || found.length === limit) return found;
      from = `(${listed[listed.length - 1]}`;
    }
  }

  private async hasItems(streamName: string, groupId: string): Promise<boolean> {
    return (await this.client.exists(this.keys.group(streamName, groupId).items)) === 1;
  }

  /** Drops an empty group's entry; returns whether items arrived meanwhile (it is put back then). */
  private async repairGroup(streamName: string, groupId: string): Promise<boolean> {
    await this.client.zrem(this.keys.streamGroups(streamName), groupId);
    if (!(await this.hasItems(streamName, groupId))) return false;
    await this.client.zadd(this.keys.streamGroups(streamName), 0, groupId);
    return true;
  }

  /** Drops the entry of a stream without groups, unless a group was added meanwhile. */
  private async repairStream(streamName: string): Promise<void> {
    await this.client.zrem(this.keys.streams, streamName);
    if ((await this.client.zcard(this.keys.streamGroups(streamName))) > 0) await this.client.zadd(this.keys.streams, 0, streamName);
  }
}
