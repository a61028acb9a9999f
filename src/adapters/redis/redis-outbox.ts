import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { ItemChange } from "../../core/model.js";
import {
  DEFAULT_MAX_OUTBOX,
  deliveryIdOf,
  outboxChangeText,
  outboxFullError,
  type OutboxCounts,
  type PendingCall,
  type ScheduledCall,
  type TriggerOutbox,
} from "../../core/outbox.js";
import type { KeyLayout, OutboxKeys } from "./key-layout.js";
import { decodeChangeMessage } from "./record-format.js";
import { withRedisErrors } from "./redis-errors.js";
import { scripts } from "./scripts.js";

/** The consumer group every instance reads a trigger's calls through. */
const GROUP = "deliver";

/** How an instance stands with one trigger's outbox. */
interface Standing {
  /** Whether this instance holds the lease now (and so delivers the trigger's calls). */
  owned: boolean;
  /**
   * Reading the calls this consumer already owns (its pending entries list, after a
   * takeover) from `cursor` on, before the new ones (`>`), which all come later in the stream.
   */
  phase: "owned" | "new";
  cursor: string;
  groupReady: boolean;
}

export interface RedisOutboxOptions {
  /**
   * How long an instance's lease on a trigger lasts without renewal (renewed every third of
   * it). When the instance dies mid-call, another takes the trigger over, and the calls the
   * dead one had taken, after at most this long. Default 10,000 ms: a takeover within
   * seconds, while a pause of a few seconds (a slow Redis, a long garbage collection) does
   * not make two instances deliver at once.
   */
  leaseMs?: number;
  /** See TriggerOutbox.maxPending. Default DEFAULT_MAX_OUTBOX. */
  maxPending?: number;
}

export const DEFAULT_OUTBOX_LEASE_MS = 10_000;

type StreamEntry = [id: string, fields: string[] | null];

/**
 * The outbox of the Redis store: per trigger, a stream that commit.lua appends the trigger's
 * calls to in the same script as their change, read through one consumer group. One
 * instance at a time delivers a trigger's calls: the one holding its lease
 * (outbox-lease.lua), renewed every third of the lease time. An instance that takes the
 * lease over claims every call still pending in the group (XAUTOCLAIM), which the previous
 * holder had read and not finished, and delivers them first, in stream order, then reads
 * on with `>`. A call leaves the stream (XACK and XDEL) only once its function answered,
 * so an instance dying mid-call leaves it to the next holder, with the same delivery id.
 *
 * Not on Redis Cluster: a trigger's outbox is in a slot of its own, which a group's commit
 * script cannot write in the same step (the Redis backend offers no outbox there).
 */
export class RedisOutbox implements TriggerOutbox {
  readonly maxPending: number;
  private readonly leaseMs: number;
  /**
   * This instance's consumer name in every trigger's group, which is also what its lease
   * holds: the process id first, so that an operator can tell which process delivers.
   */
  private readonly consumer = `${process.pid}-${randomUUID().slice(0, 8)}`;
  private readonly standings = new Map<string, Standing>();
  private readonly renewTimer: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly commands: Redis,
    private readonly keys: KeyLayout,
    options: RedisOutboxOptions = {},
  ) {
    this.leaseMs = options.leaseMs ?? DEFAULT_OUTBOX_LEASE_MS;
    this.maxPending = options.maxPending ?? DEFAULT_MAX_OUTBOX;
    this.renewTimer = setInterval(() => void this.renewLeases(), Math.max(1, Math.floor(this.leaseMs / 3)));
    this.renewTimer.unref();
  }

  async take(triggerId: string, limit: number): Promise<PendingCall[]> {
    if (this.closed) return [];
    const keys = this.keys.outbox(triggerId);
    const standing = this.standing(triggerId);
    return withRedisErrors("reading a trigger's outbox", async () => {
      if (!standing.groupReady) {
        await this.commands.xgroup("CREATE", keys.calls, GROUP, "0", "MKSTREAM").catch((error: unknown) => {
          if (!(error instanceof Error && error.message.startsWith("BUSYGROUP"))) throw error;
        });
        standing.groupReady = true;
      }
      if (!(await this.lease(keys, "take"))) {
        this.lost(standing);
        return [];
      }
      if (!standing.owned) {
        // Taken over (or first taken): whatever the group still has pending was read by an
        // instance that no longer holds the lease. It becomes this consumer's, and comes first.
        await this.claimAll(keys);
        Object.assign(standing, { owned: true, phase: "owned", cursor: "0" });
      }
      let entries: StreamEntry[] = [];
      if (standing.phase === "owned") {
        entries = await this.read(keys, limit, standing.cursor);
        if (entries.length === 0) standing.phase = "new";
        else standing.cursor = entries.at(-1)![0];
      }
      if (standing.phase === "new") entries = await this.read(keys, limit, ">");
      return this.calls(triggerId, keys, entries);
    }).catch((error: unknown) => {
      // The outbox was dropped meanwhile (its trigger unregistered, maybe registered again):
      // the group is made again at the next take.
      if (String((error as Error).message).includes("NOGROUP")) Object.assign(standing, { groupReady: false, owned: false, phase: "owned", cursor: "0" });
      throw error;
    });
  }

  async complete(call: PendingCall): Promise<void> {
    const keys = this.keys.outbox(call.triggerId);
    await withRedisErrors("completing a trigger call", () =>
      this.commands.multi().xack(keys.calls, GROUP, call.entryId).xdel(keys.calls, call.entryId).hdel(keys.attempts, call.deliveryId).exec(),
    );
  }

  async retryLater(call: PendingCall, error: string): Promise<void> {
    const keys = this.keys.outbox(call.triggerId);
    await withRedisErrors("recording a trigger call's failure", () => this.commands.hset(keys.attempts, call.deliveryId, `${call.attempts}\n${error}`));
  }

  async bury(call: PendingCall, error: string): Promise<void> {
    const keys = this.keys.outbox(call.triggerId);
    await withRedisErrors("keeping a dead letter", () =>
      this.commands
        .multi()
        .xadd(keys.dead, "*", "j", outboxChangeText(call.change), "d", call.deliveryId, "a", String(call.attempts), "e", error)
        .xack(keys.calls, GROUP, call.entryId)
        .xdel(keys.calls, call.entryId)
        .hdel(keys.attempts, call.deliveryId)
        .exec(),
    );
  }

  async deadLetters(triggerId: string, afterEntryId: string, limit: number): Promise<PendingCall[]> {
    const keys = this.keys.outbox(triggerId);
    const entries = (await withRedisErrors("listing dead letters", () =>
      this.commands.xrange(keys.dead, afterEntryId === "" ? "-" : `(${afterEntryId}`, "+", "COUNT", limit),
    )) as StreamEntry[];
    return entries.map(([id, fields]) => deadLetter(triggerId, id, fieldMap(fields ?? [])));
  }

  async reviveDeadLetters(triggerId: string, deliveryIds: readonly string[]): Promise<number> {
    const keys = this.keys.outbox(triggerId);
    const wanted = deliveryIds.length === 0 ? undefined : new Set(deliveryIds);
    return withRedisErrors("retrying dead letters", async () => {
      const entries = (await this.commands.xrange(keys.dead, "-", "+")) as StreamEntry[];
      let revived = 0;
      for (const [id, fields] of entries) {
        const map = fieldMap(fields ?? []);
        if (wanted !== undefined && !wanted.has(map.d)) continue;
        // Appended anew: the calls of the stream are read in order, and this one comes after all.
        await this.commands.multi().xadd(keys.calls, "*", "j", map.j, "d", map.d).xdel(keys.dead, id).exec();
        revived++;
      }
      return revived;
    });
  }

  async schedule(triggerId: string, calls: readonly ScheduledCall[]): Promise<number> {
    const keys = this.keys.outbox(triggerId);
    return withRedisErrors("scheduling trigger calls", async () => {
      if ((await this.commands.xlen(keys.calls)) + calls.length > this.maxPending) throw outboxFullError(triggerId);
      const batch = this.commands.multi();
      for (const call of calls) batch.xadd(keys.calls, "*", "j", outboxChangeText(call.change), "d", call.deliveryId);
      await batch.exec();
      return calls.length;
    });
  }

  async counts(triggerId: string): Promise<OutboxCounts> {
    const keys = this.keys.outbox(triggerId);
    return withRedisErrors("counting a trigger's outbox", async () => {
      const [pending, dead] = await Promise.all([this.commands.xlen(keys.calls), this.commands.xlen(keys.dead)]);
      return { pending, dead };
    });
  }

  async forget(triggerId: string): Promise<void> {
    const keys = this.keys.outbox(triggerId);
    this.standings.delete(triggerId);
    await withRedisErrors("dropping a trigger's outbox", () => this.commands.del(keys.calls, keys.dead, keys.attempts, keys.lease));
  }

  owns(triggerId: string): boolean {
    return this.standings.get(triggerId)?.owned ?? false;
  }

  async release(triggerId: string): Promise<void> {
    const standing = this.standings.get(triggerId);
    this.standings.delete(triggerId);
    if (standing?.owned) await this.lease(this.keys.outbox(triggerId), "drop");
  }

  /** Gives up every lease, so that another instance takes the triggers over at once rather than after the lease time. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.renewTimer);
    const owned = [...this.standings].filter(([, standing]) => standing.owned).map(([triggerId]) => triggerId);
    this.standings.clear();
    await Promise.all(owned.map((triggerId) => this.lease(this.keys.outbox(triggerId), "drop").catch(() => undefined)));
  }

  private standing(triggerId: string): Standing {
    let standing = this.standings.get(triggerId);
    if (!standing) this.standings.set(triggerId, (standing = { owned: false, phase: "owned", cursor: "0", groupReady: false }));
    return standing;
  }

  private lost(standing: Standing): void {
    standing.owned = false;
    standing.phase = "owned";
    standing.cursor = "0";
  }

  private async lease(keys: OutboxKeys, mode: "take" | "drop"): Promise<boolean> {
    return (await scripts.outboxLease.run(this.commands, [keys.lease], [mode, this.consumer, String(this.leaseMs)])) === 1;
  }

  /** Renews the leases held; one that was lost (Redis unreachable for the lease time) stops delivery here. */
  private async renewLeases(): Promise<void> {
    for (const [triggerId, standing] of this.standings) {
      if (!standing.owned) continue;
      try {
        if (!(await this.lease(this.keys.outbox(triggerId), "take"))) this.lost(standing);
      } catch {
        // Unreachable: the lease runs out unless a later renewal gets through.
      }
    }
  }

  /** Moves every pending entry of the group to this consumer. */
  private async claimAll(keys: OutboxKeys): Promise<void> {
    let start = "0-0";
    do {
      const reply = (await this.commands.xautoclaim(keys.calls, GROUP, this.consumer, 0, start, "COUNT", 1000, "JUSTID")) as [string, string[], string[]?];
      start = reply[0];
    } while (start !== "0-0");
  }

  private async read(keys: OutboxKeys, limit: number, from: string): Promise<StreamEntry[]> {
    const reply = (await this.commands.xreadgroup("GROUP", GROUP, this.consumer, "COUNT", limit, "STREAMS", keys.calls, from)) as
      | Array<[string, StreamEntry[]]>
      | null;
    return reply?.[0]?.[1] ?? [];
  }

  /** The calls of stream entries, with the attempts already made; entries deleted meanwhile are acknowledged and skipped. */
  private async calls(triggerId: string, keys: OutboxKeys, entries: StreamEntry[]): Promise<PendingCall[]> {
    const calls: PendingCall[] = [];
    const gone: string[] = [];
    for (const [id, fields] of entries) {
      if (fields === null || fields.length === 0) {
        gone.push(id);
        continue;
      }
      const map = fieldMap(fields);
      const change = map.m !== undefined ? decodeChangeMessage(map.s, map.g, map.m) : (JSON.parse(map.j) as ItemChange);
      calls.push({ triggerId, entryId: id, deliveryId: map.d ?? deliveryIdOf(triggerId, change), change, attempts: 0, lastError: "" });
    }
    if (gone.length > 0) await this.commands.xack(keys.calls, GROUP, ...gone);
    if (calls.length > 0) {
      const attempts = await this.commands.hmget(keys.attempts, ...calls.map((call) => call.deliveryId));
      attempts.forEach((text, index) => {
        if (text === null) return;
        const cut = text.indexOf("\n");
        calls[index].attempts = Number(text.slice(0, cut));
        calls[index].lastError = text.slice(cut + 1);
      });
    }
    return calls;
  }
}

function fieldMap(fields: string[]): Record<string, string> {
  const map: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) map[fields[i]] = fields[i + 1];
  return map;
}

function deadLetter(triggerId: string, entryId: string, map: Record<string, string>): PendingCall {
  return { triggerId, entryId, deliveryId: map.d, change: JSON.parse(map.j) as ItemChange, attempts: Number(map.a), lastError: map.e };
}
