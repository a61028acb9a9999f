import type { JsonValue } from "./json.js";
import type { GroupMessage } from "./model.js";
import type { SubscriptionTarget } from "./subscription.js";
import { errorFields, silentLog, type Log } from "./log.js";

/**
 * What may happen around the engine's writes and subscriptions, named for when it runs.
 * The engine takes a list of these and runs each hook of every entry in list order.
 *
 * What holds on every store:
 * - `afterCommit` runs once per committed change or sent event, after the store
 *   accepted it and before the write's reply is sent.
 * - Its order against delivery to subscribers depends on the store: the memory and
 *   file stores hand the change to this process's subscribers inside `commit`, so
 *   delivery is queued before `afterCommit` runs; on Redis the change comes back over
 *   the subscriber connection, so local subscribers get it later, often after the reply.
 *   Nothing may rely on one order.
 * - `beforeJoin` runs before the subscription is registered or reads anything; when
 *   any entry throws, the join is refused with that error and later entries do not run.
 * - `afterLeave` runs once for each subscription that every `beforeJoin` accepted,
 *   when it ends for any reason.
 */
export interface EngineHooks {
  /** After a change is committed or an event sent. Must not block; an exception is reported, not passed on. */
  afterCommit?(message: GroupMessage): void;
  /**
   * Before a change of the item is committed: the ids of the triggers whose pending call
   * the store records in the same step (see ItemWrite.outbox). Must be fast and pure.
   */
  durableTriggers?(target: SubscriptionTarget & { itemId: string }): readonly string[];
  /** Before a subscription reads its snapshot. Throw a StreamError to refuse it. */
  beforeJoin?(join: JoinInfo): Promise<void>;
  /** When a subscription accepted by `beforeJoin` ends. An exception is reported, not passed on. */
  afterLeave?(join: JoinInfo): void;
}

export interface JoinInfo extends SubscriptionTarget {
  /** Whatever the transport's authentication produced, passed through to hooks. */
  context: JsonValue;
  /** Identifies the subscription in hook payloads. */
  subscriptionId: string;
}

/**
 * Runs a list of hooks in order. Every write calls `afterCommit`, so the functions
 * are collected once here rather than looked up per call.
 */
export class HookRunner {
  private readonly commits: Array<(message: GroupMessage) => void> = [];
  private readonly joins: Array<(join: JoinInfo) => Promise<void>> = [];
  private readonly leaves: Array<(join: JoinInfo) => void> = [];
  private readonly durable: Array<(target: SubscriptionTarget & { itemId: string }) => readonly string[]> = [];

  constructor(
    hooks: readonly EngineHooks[] = [],
    /** Where a hook's exception goes; it never reaches the write or subscription that ran the hook. */
    private readonly log: Log = silentLog,
  ) {
    for (const entry of hooks) {
      if (entry.afterCommit) this.commits.push(entry.afterCommit.bind(entry));
      if (entry.beforeJoin) this.joins.push(entry.beforeJoin.bind(entry));
      if (entry.afterLeave) this.leaves.push(entry.afterLeave.bind(entry));
      if (entry.durableTriggers) this.durable.push(entry.durableTriggers.bind(entry));
    }
  }

  /** Every entry's durable triggers for a change of the item; undefined when there are none. */
  durableTriggers(target: SubscriptionTarget & { itemId: string }): readonly string[] | undefined {
    if (this.durable.length === 0) return undefined;
    // One hook (the functions runtime) is the usual case: its list is used as it is.
    const ids = this.durable.length === 1 ? this.durable[0](target) : this.durable.flatMap((hook) => hook(target));
    return ids.length === 0 ? undefined : ids;
  }

  /** Whether any entry wants `afterLeave`: without one, subscriptions need no end callback. */
  get watchesLeaves(): boolean {
    return this.leaves.length > 0;
  }

  afterCommit(message: GroupMessage): void {
    for (const hook of this.commits) {
      try {
        hook(message);
      } catch (error) {
        this.log.error("afterCommit hook failed", { hook: "afterCommit", stream: message.streamName, group: message.groupId, ...errorFields(error) });
      }
    }
  }

  /** Rejects with the first entry's exception; the entries after it do not run. */
  async beforeJoin(join: JoinInfo): Promise<void> {
    for (const hook of this.joins) await hook(join);
  }

  afterLeave(join: JoinInfo): void {
    for (const hook of this.leaves) {
      try {
        hook(join);
      } catch (error) {
        this.log.error("afterLeave hook failed", { hook: "afterLeave", stream: join.streamName, group: join.groupId, subscription_id: join.subscriptionId, ...errorFields(error) });
      }
    }
  }
}
