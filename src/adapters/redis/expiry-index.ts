import type { DueExpiry } from "../../core/item-store.js";
import type { KeyLayout } from "./key-layout.js";
import type { RedisClient } from "./scripts.js";

/**
 * Finds the due expiries of a whole deployment without scanning the keyspace. Each
 * group keeps its own ZSET of expiries (`GroupKeys.expiry`), written by commit.lua in
 * the same step as the item; `KeyLayout.expiringGroups` lists the groups that may hold
 * expiring items, each scored at or before its earliest expiry, so the sweeper reads
 * only the groups with something due.
 *
 * On Redis Cluster that list lives in another slot than the groups, so the commit script
 * cannot keep it exact. Instead a group's score may be too early (a due-looking group
 * with nothing due costs one read), never too late:
 * - A writer that gives an item an expiry lowers the group's score to it (ZADD LT)
 *   before its commit (a crash after the commit still leaves the group listed) and again
 *   after it.
 * - The sweeper, reading a listed group, sets its score to the earliest expiry it read
 *   (or removes it when it read none), then reads the group once more and lowers the
 *   score when an earlier expiry arrived meanwhile. A writer's commit either came before
 *   that second read (which then sees it) or after it, and then its own "after" ZADD LT
 *   comes after the sweeper's update too.
 */
export class ExpiryIndex {
  constructor(
    private readonly client: RedisClient,
    private readonly keys: KeyLayout,
  ) {}

  /** Records that the group holds (or is about to hold) an item expiring at `expiresAtMs`. */
  async add(streamName: string, groupId: string, expiresAtMs: number): Promise<void> {
    await this.client.zadd(this.keys.expiringGroups, "LT", expiresAtMs, member(streamName, groupId));
  }

  /** Up to `limit` items due at `nowMs`, from the groups whose score says something may be due. */
  async due(nowMs: number, limit: number): Promise<DueExpiry[]> {
    const members = await this.client.zrangebyscore(this.keys.expiringGroups, "-inf", nowMs, "LIMIT", 0, limit);
    const found: DueExpiry[] = [];
    for (const entry of members) {
      if (found.length >= limit) break;
      const [streamName, groupId] = JSON.parse(entry) as [string, string];
      const expiry = this.keys.group(streamName, groupId).expiry;
      await this.rescore(entry, expiry);
      const scored = await this.client.zrangebyscore(expiry, "-inf", nowMs, "WITHSCORES", "LIMIT", 0, limit - found.length);
      for (let i = 0; i < scored.length; i += 2) {
        found.push({ streamName, groupId, itemId: scored[i], expiresAtMs: Number(scored[i + 1]) });
      }
    }
    return found;
  }

  /**
   * Sets the group's score to its earliest expiry (or drops it when it has none), then
   * lowers it again if an earlier one arrived meanwhile (see the class comment). Items
   * still due keep the score due, so an item whose removal fails is read again.
   */
  private async rescore(entry: string, expiry: string): Promise<void> {
    const earliest = await this.earliest(expiry);
    if (earliest === undefined) await this.client.zrem(this.keys.expiringGroups, entry);
    else await this.client.zadd(this.keys.expiringGroups, String(earliest), entry);
    const again = await this.earliest(expiry);
    if (again !== undefined && (earliest === undefined || again < earliest)) {
      await this.client.zadd(this.keys.expiringGroups, "LT", again, entry);
    }
  }

  private async earliest(expiry: string): Promise<number | undefined> {
    const first = await this.client.zrange(expiry, "0", "0", "WITHSCORES");
    return first.length === 0 ? undefined : Number(first[1]);
  }
}

/** A group as a member of the list: JSON of its two names, which any names encode to unambiguously. */
function member(streamName: string, groupId: string): string {
  return JSON.stringify([streamName, groupId]);
}
