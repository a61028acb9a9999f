import type { FunctionRecord, RegistrationStore, StoredRegistrations, TriggerRecord } from "../../core/registrations.js";
import { ChangeListeners } from "../../core/change-listeners.js";
import type { RedisConnections } from "./connections.js";
import type { KeyLayout, RegistrationKeys } from "./key-layout.js";
import { withRedisErrors } from "./redis-errors.js";
import { scripts, type RedisClient } from "./scripts.js";
import { StandingChannel } from "./standing-channel.js";

/**
 * Remote functions and triggers in Redis, shared by every instance that uses the same
 * Redis and key prefix: one HASH of records each (see RegistrationKeys). A write stores
 * the record and publishes on the registrations' change channel in one script, so an
 * instance told about a change always reads it back. All keys and the channel share one
 * hash tag, which on Cluster puts them on one shard: they are few and change rarely.
 *
 * Each instance subscribes to the change channel while someone listens. A notification
 * lost while the subscriber connection was down is made up for by notifying the
 * listeners once the subscription is renewed, and once when it first takes effect (a
 * change made between a listener's first load and the subscription would be missed).
 */
export class RedisRegistrations implements RegistrationStore {
  private readonly commands: RedisClient;
  private readonly keys: RegistrationKeys;
  private readonly changes: StandingChannel;
  private readonly listeners = new ChangeListeners();

  constructor(connections: RedisConnections, layout: KeyLayout) {
    this.commands = connections.commands;
    this.keys = layout.registrations;
    this.changes = new StandingChannel(connections, this.keys.changes, () => this.changed(), () => this.changed());
  }

  load(): Promise<StoredRegistrations> {
    return withRedisErrors("reading functions and triggers", async () => {
      const [functions, triggers] = await Promise.all([this.commands.hgetall(this.keys.functions), this.commands.hgetall(this.keys.triggers)]);
      return {
        functions: Object.values(functions).map((text) => JSON.parse(text) as FunctionRecord),
        triggers: Object.values(triggers).map((text) => JSON.parse(text) as TriggerRecord),
      };
    });
  }

  async saveFunction(record: FunctionRecord): Promise<void> {
    await this.write(this.keys.functions, "set", record.functionId, record);
  }

  deleteFunction(functionId: string): Promise<boolean> {
    return this.write(this.keys.functions, "delete", functionId);
  }

  async saveTrigger(record: TriggerRecord): Promise<void> {
    await this.write(this.keys.triggers, "set", record.triggerId, record);
  }

  deleteTrigger(triggerId: string): Promise<boolean> {
    return this.write(this.keys.triggers, "delete", triggerId);
  }

  onChange(listener: () => void): () => void {
    const remove = this.listeners.add(listener);
    if (this.listeners.size === 1) this.changes.open().then(() => this.changed(), () => undefined);
    return () => {
      if (remove() && this.listeners.size === 0) this.changes.close().catch(() => undefined);
    };
  }

  /** Stops listening for changes. */
  async close(): Promise<void> {
    this.listeners.clear();
    await this.changes.close().catch(() => undefined);
  }

  private write(hash: string, op: "set" | "delete", id: string, record?: FunctionRecord | TriggerRecord): Promise<boolean> {
    const operation = op === "set" ? "storing a registration" : "removing a registration";
    return withRedisErrors(operation, async () => {
      const args = [op, id, record === undefined ? "" : JSON.stringify(record), this.keys.changes];
      return (await scripts.registrationWrite.run(this.commands, [hash], args)) === 1;
    });
  }

  private changed(): void {
    this.listeners.notify();
  }
}
