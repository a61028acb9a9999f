import type { StreamGroups } from "../../core/model.js";
import { compareBytes } from "../../core/names.js";
import type { KeyLayout } from "./key-layout.js";
import type { RedisClient } from "./scripts.js";

/**
 * The index behind ListGroups and ListAll, so that they never scan the keyspace: a SET
 * of stream names and, per stream, a SET of its group ids.
 *
 * On Redis Cluster these sets live in other slots than the groups they list, so the
 * commit script cannot update them in the same step. Instead the index may list more
 * than what exists, never less, and readers correct it:
 * - A writer that creates an item adds the group before the commit (so a crash right
 *   after the commit still leaves it listed) and again after a commit that made the
 *   group non-empty (a reader may have dropped the entry in between, seeing the group
 *   still empty).
 * - A reader checks each listed group for items. An empty one is removed, then checked
 *   once more and put back if items arrived meanwhile: a writer's "after" add either
 *   came before the removal (then the second check sees its items) or after it.
 * - Streams work the same way one level up; a writer adds the group before the stream,
 *   so a reader that finds a stream's group set non-empty after removing the stream
 *   puts it back.
 * Emptied groups are thus dropped lazily, by the next reader.
 */
export class GroupIndex {
  constructor(
    private readonly client: RedisClient,
    private readonly keys: KeyLayout,
  ) {}

  /** Records that the group has items, or is about to. */
  async add(streamName: string, groupId: string): Promise<void> {
    await this.client.sadd(this.keys.streamGroups(streamName), groupId);
    await this.client.sadd(this.keys.streams, streamName);
  }

  /** The stream's non-empty groups, sorted; drops the entries of empty ones. */
  async groups(streamName: string): Promise<string[]> {
    const listed = await this.client.smembers(this.keys.streamGroups(streamName));
    const live = await Promise.all(
      listed.map(async (groupId) => (await this.hasItems(streamName, groupId)) || this.repairGroup(streamName, groupId)),
    );
    return listed.filter((_, i) => live[i]).sort(compareBytes);
  }

  async all(): Promise<StreamGroups[]> {
    const streams = await this.client.smembers(this.keys.streams);
    const listed = await Promise.all(
      streams.map(async (streamName) => {
        const groups = await this.groups(streamName);
        if (groups.length > 0) return { streamName, groups };
        await this.repairStream(streamName);
        return undefined;
      }),
    );
    return listed
      .filter((entry): entry is StreamGroups => entry !== undefined)
      .sort((a, b) => compareBytes(a.streamName, b.streamName));
  }

  private async hasItems(streamName: string, groupId: string): Promise<boolean> {
    return (await this.client.exists(this.keys.group(streamName, groupId).items)) === 1;
  }

  /** Drops an empty group's entry; returns whether items arrived meanwhile (it is put back then). */
  private async repairGroup(streamName: string, groupId: string): Promise<boolean> {
    await this.client.srem(this.keys.streamGroups(streamName), groupId);
    if (!(await this.hasItems(streamName, groupId))) return false;
    await this.client.sadd(this.keys.streamGroups(streamName), groupId);
    return true;
  }

  /** Drops the entry of a stream without groups, unless a group was added meanwhile. */
  private async repairStream(streamName: string): Promise<void> {
    await this.client.srem(this.keys.streams, streamName);
    if ((await this.client.scard(this.keys.streamGroups(streamName))) > 0) await this.client.sadd(this.keys.streams, streamName);
  }
}
