import { randomUUID } from "node:crypto";
import { ErrorCode, StreamError } from "../../core/errors.js";
import type { FleetBus, HostedEntry, Hosting } from "../../core/fleet-bus.js";
import type { TriggerRecord } from "../../core/registrations.js";
import type { RedisConnections } from "./connections.js";
import type { KeyLayout, RegistrationKeys } from "./key-layout.js";
import { withRedisErrors } from "./redis-errors.js";
import { scripts, type RedisClient } from "./scripts.js";
import { StandingChannel } from "./standing-channel.js";

/** An instance's entry in the `hosted` hash. */
interface StoredEntry {
  functions: string[];
  /** Left out when empty, so that entries read the same as before the field existed. */
  unlisted?: string[];
  triggers: TriggerRecord[];
}

/**
 * The entry for what an instance hosts, in an order that does not depend on the order of
 * registration, so that an unchanged set is not announced as a change; "" for nothing.
 */
function entryJson({ functionIds, unlistedFunctionIds = [], triggers }: Hosting): string {
  if (functionIds.length === 0 && triggers.length === 0) return "";
  const entry: StoredEntry = {
    functions: [...functionIds].sort(),
    ...(unlistedFunctionIds.length > 0 ? { unlisted: [...unlistedFunctionIds].sort() } : {}),
    triggers: [...triggers].sort((a, b) => (a.triggerId < b.triggerId ? -1 : a.triggerId > b.triggerId ? 1 : 0)),
  };
  return JSON.stringify(entry);
}

/**
 * The fleet bus over Redis. Each instance has a random id and a shard channel of its own,
 * which it subscribes to on open; SPUBLISH says how many subscribers got a text, which is
 * what `send` reports as delivered. An instance whose workers offer functions or triggers
 * keeps an entry (its id, those function ids and trigger records, an expiry) under the
 * registrations' hash tag and renews it every third of `ttlMs`; the renewals also drop
 * the entries of instances that stopped renewing theirs (a crashed process), so these
 * vanish within about `ttlMs`. fleet-announce.lua publishes a change of what the fleet
 * hosts on the registrations' change channel (see redis-registrations.ts).
 */
export class RedisFleetBus implements FleetBus {
  readonly instanceId = randomUUID();
  private readonly commands: RedisClient;
  private readonly keys: RegistrationKeys;
  private readonly inbox: StandingChannel;
  private onMessage: ((text: string) => void) | undefined;
  /** What this instance hosts as last announced (see fleet-announce.lua; "" for nothing); renewals repeat it. */
  private entryJson = "";
  private renewal: NodeJS.Timeout | undefined;
  private left = false;
  private closed = false;

  constructor(
    connections: RedisConnections,
    private readonly layout: KeyLayout,
    private readonly ttlMs: number,
  ) {
    this.commands = connections.commands;
    this.keys = layout.registrations;
    this.inbox = new StandingChannel(connections, layout.instanceChannel(this.instanceId), (text) => this.onMessage?.(text), () => undefined);
  }

  async open(onMessage: (text: string) => void): Promise<void> {
    if (this.left) throw new StreamError(ErrorCode.Unavailable, "the Redis adapter is closed");
    // One instance per backend: a second server on the same backend would take its calls.
    if (this.onMessage) throw new Error("this Redis adapter already serves another server's worker functions");
    this.onMessage = onMessage;
    await withRedisErrors("subscribing to this instance's call channel", () => this.inbox.open());
    this.renewal ??= setInterval(() => {
      // A failed renewal (Redis away) is retried by the next one; health checks report the outage.
      this.sendEntry().catch(() => undefined);
    }, Math.max(1, Math.floor(this.ttlMs / 3)));
    this.renewal.unref();
  }

  async send(instanceId: string, text: string): Promise<boolean> {
    const receivers = await withRedisErrors("calling another instance", () =>
      this.commands.spublish(this.layout.instanceChannel(instanceId), text),
    );
    return Number(receivers) > 0;
  }

  async announce(hosting: Hosting): Promise<void> {
    if (this.left) return;
    this.entryJson = entryJson(hosting);
    await withRedisErrors("announcing this instance's worker functions and triggers", () => this.sendEntry());
  }

  hosted(): Promise<HostedEntry[]> {
    return withRedisErrors("reading the fleet's worker functions and triggers", async () => {
      const reply = (await scripts.fleetHosted.run(this.commands, [this.keys.instances, this.keys.hosted], [])) as string[];
      const hosted: HostedEntry[] = [];
      for (let i = 0; i < reply.length; i += 2) {
        const entry = JSON.parse(reply[i + 1]) as StoredEntry;
        hosted.push({ instanceId: reply[i], functionIds: entry.functions, unlistedFunctionIds: entry.unlisted ?? [], triggers: entry.triggers });
      }
      return hosted;
    });
  }

  async leave(): Promise<void> {
    if (this.left) return;
    this.left = true;
    clearInterval(this.renewal);
    if (!this.onMessage) return;
    this.entryJson = "";
    // Others stop calling here at once; if Redis is away, the entry expires instead.
    await this.sendEntry(0).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.leave();
    if (this.closed) return;
    this.closed = true;
    if (this.onMessage) await this.inbox.close().catch(() => undefined);
  }

  private async sendEntry(ttlMs = this.ttlMs): Promise<void> {
    await scripts.fleetAnnounce.run(
      this.commands,
      [this.keys.instances, this.keys.hosted],
      [this.instanceId, String(ttlMs), this.entryJson, this.keys.changes],
    );
  }
}
