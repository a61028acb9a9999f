/**
 * Where one group lives in Redis. Every key and the channel of a group share a hash
 * tag, so one Lua script can touch all of them on Redis Cluster, and a group's
 * traffic stays on one shard.
 */
export interface GroupKeys {
  /** HASH item id -> stored item record (see record-format.ts). */
  items: string;
  /** ZSET item id scored by the offset of its creation: the insertion order. */
  order: string;
  /** STRING counter of the group offset; outlives the group, so offsets never repeat. */
  offset: string;
  /** LIST of the group's last change messages, oldest first. */
  history: string;
  /** Shard channel (SPUBLISH/SSUBSCRIBE) carrying the group's changes and events. */
  channel: string;
  /** HASH request id -> remembered request record (see commit.lua); outlives the group's items, like the offset. */
  requests: string;
  /** ZSET request id scored by when its record expires, which is the order records are forgotten in. */
  requestExpiry: string;
  /** ZSET item id scored by when it expires (ms); only the items that expire are in it. */
  expiry: string;
}

/** Default key prefix: names the application, and leaves room for others on one Redis. */
export const DEFAULT_KEY_PREFIX = "iii-stream:";

/**
 * Builds key names from stream and group names, which may contain any character,
 * `{`, `}` and `:` included. Each name is base64url-encoded (its alphabet has none of
 * `{`, `}` or `.`), so `{<stream>.<group>}` is unambiguous and a valid hash tag.
 *
 * Layout under the prefix P:
 *   P{s.g}:items | :order | :offset | :history | :changes | :requests | :request-expiry | :expiry   one group
 *   P{s}:group-names   ZSET of the stream's groups, every score 0 (index, see group-index.ts)
 *   Pstream-names      ZSET of stream names, every score 0 (index)
 *   Pexpiring-groups   ZSET of the groups holding expiring items, each scored at or before
 *                      its earliest expiry (see expiry-index.ts)
 *   P{registrations}:...     functions, triggers and the fleet's worker functions
 *                            (see RegistrationKeys); one tag, so one script can touch them all
 *   P{instance:<id>}:calls   shard channel of one server instance (see redis-fleet-bus.ts)
 *   P{outbox:<t>}:calls | :dead | :attempts | :lease   one at-least-once trigger (see OutboxKeys)
 *
 * Earlier versions kept the index as SETs under P{s}:groups and Pstreams (see
 * `legacyStreamGroups`); connecting moves them into the ZSETs once (index-migration.ts).
 * The ZSETs have new names, so that no reader ever meets a key of the other type.
 */
export class KeyLayout {
  constructor(readonly prefix: string = DEFAULT_KEY_PREFIX) {
    // A brace in the prefix would become the hash tag of every key and put all
    // groups in one Cluster slot.
    if (/[{}]/.test(prefix)) throw new Error(`the Redis key prefix must not contain "{" or "}": ${JSON.stringify(prefix)}`);
  }

  group(streamName: string, groupId: string): GroupKeys {
    const base = `${this.prefix}{${encodeName(streamName)}.${encodeName(groupId)}}:`;
    return {
      items: `${base}items`,
      order: `${base}order`,
      offset: `${base}offset`,
      history: `${base}history`,
      channel: `${base}changes`,
      requests: `${base}requests`,
      requestExpiry: `${base}request-expiry`,
      expiry: `${base}expiry`,
    };
  }

  /**
   * The ZSET of a stream's groups. Every score is 0, so that ZRANGE BYLEX pages it in
   * byte order, the order of compareBytes.
   */
  streamGroups(streamName: string): string {
    return `${this.prefix}{${encodeName(streamName)}}:group-names`;
  }

  /** The ZSET of stream names, every score 0 like `streamGroups`. */
  get streams(): string {
    return `${this.prefix}stream-names`;
  }

  /**
   * The ZSET of groups that hold expiring items (members: see expiry-index.ts), each
   * scored at or before the earliest expiry of its group: the sweeper's starting point.
   * One key for the whole deployment, outside every group's hash tag, so it is never
   * written by a group's scripts, only by commands of its own.
   */
  get expiringGroups(): string {
    return `${this.prefix}expiring-groups`;
  }

  /** Where earlier versions kept a stream's groups, as a SET: read only to migrate it. */
  legacyStreamGroups(streamName: string): string {
    return `${this.prefix}{${encodeName(streamName)}}:groups`;
  }

  /** Where earlier versions kept the stream names, as a SET: read only to migrate it. */
  get legacyStreams(): string {
    return `${this.prefix}streams`;
  }

  get registrations(): RegistrationKeys {
    // No group or stream tag ends in the suffixes used here, so the tag may be shared
    // with a stream whose encoded name is "registrations" without any key colliding.
    const base = `${this.prefix}{registrations}:`;
    return {
      functions: `${base}functions`,
      triggers: `${base}triggers`,
      instances: `${base}instances`,
      hosted: `${base}hosted`,
      changes: `${base}changes`,
    };
  }

  /**
   * The outbox of one at-least-once trigger. Its own hash tag: one trigger's keys share a
   * slot, and a trigger's calls are read from one stream whatever groups they come from.
   */
  outbox(triggerId: string): OutboxKeys {
    // "outbox:" is not in the base64url alphabet, so no group or stream tag looks like it.
    const base = `${this.prefix}{outbox:${encodeName(triggerId)}}:`;
    return { calls: `${base}calls`, dead: `${base}dead`, attempts: `${base}attempts`, lease: `${base}lease` };
  }

  /** The shard channel carrying calls to one instance and the replies to its own calls. */
  instanceChannel(instanceId: string): string {
    // ":" is not in the base64url alphabet, so no group tag looks like this one.
    return `${this.prefix}{instance:${instanceId}}:calls`;
  }
}

/** Where an at-least-once trigger's calls live (see redis-outbox.ts). */
export interface OutboxKeys {
  /** STREAM of pending calls (s, g, m = change message; d = delivery id when not the change's own), read by consumer group "deliver". */
  calls: string;
  /** STREAM of dead letters: s, g, m, d, a (attempts), e (last error). */
  dead: string;
  /** HASH delivery id -> "<attempts>\n<last error>" of the pending calls that failed. */
  attempts: string;
  /** STRING the instance delivering the trigger's calls now, expiring (see outbox-lease.lua). */
  lease: string;
}

/** Where registrations live (see redis-registrations.ts and redis-fleet-bus.ts). */
export interface RegistrationKeys {
  /** HASH function id -> FunctionRecord JSON. */
  functions: string;
  /** HASH trigger id -> TriggerRecord JSON. */
  triggers: string;
  /** ZSET id of an instance hosting worker functions -> when its entry expires (ms, Redis clock). */
  instances: string;
  /** HASH instance id -> JSON of the worker function ids and triggers it hosts (see fleet-announce.lua). */
  hosted: string;
  /** Shard channel announcing that any of the above changed. */
  changes: string;
}

function encodeName(name: string): string {
  return Buffer.from(name, "utf8").toString("base64url");
}
