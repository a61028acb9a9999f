import type { JsonObject } from "../core/json.js";
import { groupKey } from "../core/names.js";
import { errorFields, type Log } from "../core/log.js";
import type { PendingCall, TriggerOutbox } from "../core/outbox.js";
import { DEFAULT_MAX_ATTEMPTS, DEFAULT_RETRY_INITIAL_MS, DEFAULT_RETRY_MAX_MS, type TriggerRecord } from "../core/registrations.js";
import type { TriggerOutcome } from "./trigger-dispatcher.js";
import { streamTriggerPayload } from "./trigger-payloads.js";

export interface DurableDeliveryOptions {
  outbox: TriggerOutbox;
  /** Makes one call: the condition, then the handler (TriggerDispatcher.run). Never rejects. */
  run: (trigger: TriggerRecord, payload: JsonObject) => Promise<TriggerOutcome>;
  /** Whether a function can be called now; a call to one that cannot waits without using an attempt. */
  callable: (functionId: string) => boolean;
  log: Log;
  /**
   * Most calls of one trigger held in memory at once, taken from the outbox in order.
   * Default 1,000: enough for many items to go on while some wait for retries; a single
   * item with more failing calls than that holds back the others until it is unblocked.
   */
  window?: number;
  /** Most calls of one trigger running at once, each for a different item. Default 32, as at most once. */
  maxConcurrentPerTrigger?: number;
  /**
   * How often an idle trigger looks for calls added elsewhere (another instance's writes,
   * a lease to take over). Default 250 ms. Writes made here wake it at once.
   */
  pollMs?: number;
}

/** The calls of one trigger: per item, those taken and not yet finished, head first. */
interface Loop {
  trigger: TriggerRecord;
  queues: Map<string, PendingCall[]>;
  /** Items whose head may start now. */
  ready: string[];
  running: number;
  loaded: number;
  fetching: boolean;
  /** Set when a fill was asked for while one ran, so that nothing added meanwhile waits for the poll. */
  refill: boolean;
  stopped: boolean;
  poll: NodeJS.Timeout | undefined;
  /** Items waiting for a retry's pause or for their function: their timers. */
  waiting: Map<string, NodeJS.Timeout>;
  /** Bumped when the loop's state is dropped (a lost lease), so calls of the old state do not touch the new. */
  generation: number;
}

/** A function that is not registered is looked for again this often (it counts as lag meanwhile). */
const UNREGISTERED_RETRY_MS = 500;

/**
 * Delivers the calls of `at_least_once` triggers from the store's outbox: per trigger and
 * item, one call at a time in outbox order (offset order), retrying a failed call with
 * exponential backoff and jitter until it succeeds or has used `max_attempts`, when it
 * becomes a dead letter and the item's next call goes on. Other items never wait for it.
 * A call is only removed from the outbox after its function answered, so a crash at any
 * moment repeats calls but never loses one.
 */
export class DurableDelivery {
  private readonly loops = new Map<string, Loop>();
  private readonly window: number;
  private readonly maxConcurrent: number;
  private readonly pollMs: number;
  private closed = false;

  constructor(private readonly options: DurableDeliveryOptions) {
    this.window = options.window ?? 1_000;
    this.maxConcurrent = options.maxConcurrentPerTrigger ?? 32;
    this.pollMs = options.pollMs ?? 250;
  }

  /** The `at_least_once` stream triggers there are now: loops start for new ones and stop for those gone. */
  setTriggers(triggers: readonly TriggerRecord[]): void {
    if (this.closed) return;
    const wanted = new Map(triggers.map((trigger) => [trigger.triggerId, trigger]));
    for (const [triggerId, loop] of this.loops) {
      if (!wanted.has(triggerId)) this.stop(loop);
    }
    for (const [triggerId, trigger] of wanted) {
      const loop = this.loops.get(triggerId);
      if (loop) loop.trigger = trigger;
      else this.start(trigger);
    }
  }

  /** Calls were added to the trigger's outbox here: take them now rather than at the next poll. */
  wake(triggerId: string): void {
    const loop = this.loops.get(triggerId);
    if (loop) this.fill(loop);
  }

  /** Functions changed: items waiting for an unregistered function try again now. */
  functionsChanged(): void {
    for (const loop of this.loops.values()) this.fill(loop);
  }

  /** Stops every loop; calls running go on, their outcome is still recorded. */
  async close(): Promise<void> {
    this.closed = true;
    const loops = [...this.loops.values()];
    for (const loop of loops) this.stop(loop);
  }

  private start(trigger: TriggerRecord): void {
    const loop: Loop = {
      trigger,
      queues: new Map(),
      ready: [],
      running: 0,
      loaded: 0,
      fetching: false,
      refill: false,
      stopped: false,
      poll: undefined,
      waiting: new Map(),
      generation: 0,
    };
    this.loops.set(trigger.triggerId, loop);
    this.fill(loop);
  }

  private stop(loop: Loop): void {
    loop.stopped = true;
    this.loops.delete(loop.trigger.triggerId);
    clearTimeout(loop.poll);
    for (const timer of loop.waiting.values()) clearTimeout(timer);
    loop.waiting.clear();
    this.options.outbox.release(loop.trigger.triggerId).catch((error: unknown) => {
      this.options.log.warn("cannot release a trigger's outbox", { trigger_id: loop.trigger.triggerId, ...errorFields(error) });
    });
  }

  /** Takes more calls from the outbox while the window has room, then starts what may start. */
  private fill(loop: Loop): void {
    if (loop.stopped) return;
    if (loop.fetching) {
      loop.refill = true;
      return;
    }
    const room = this.window - loop.loaded;
    if (room <= 0) return;
    loop.fetching = true;
    loop.refill = false;
    clearTimeout(loop.poll);
    loop.poll = undefined;
    const generation = loop.generation;
    const triggerId = loop.trigger.triggerId;
    this.options.outbox
      .take(triggerId, room)
      .then(
        (calls) => {
          if (loop.stopped || generation !== loop.generation) return false;
          for (const call of calls) this.enqueue(loop, call);
          this.pump(loop);
          return calls.length === room;
        },
        (error: unknown) => {
          this.options.log.warn("cannot read a trigger's outbox; trying again", { trigger_id: triggerId, ...errorFields(error) });
          return false;
        },
      )
      .then((full) => {
        loop.fetching = false;
        if (loop.stopped) return;
        if (full || loop.refill) this.fill(loop);
        else loop.poll = setTimeout(() => this.fill(loop), this.pollMs);
      });
  }

  private enqueue(loop: Loop, call: PendingCall): void {
    const key = groupKey(call.change.streamName, call.change.groupId, call.change.itemId);
    loop.loaded++;
    const queue = loop.queues.get(key);
    if (queue) {
      queue.push(call);
      return;
    }
    loop.queues.set(key, [call]);
    loop.ready.push(key);
  }

  private pump(loop: Loop): void {
    while (!loop.stopped && loop.running < this.maxConcurrent && loop.ready.length > 0) {
      const key = loop.ready.shift()!;
      const queue = loop.queues.get(key);
      if (!queue || queue.length === 0) continue;
      if (!this.options.outbox.owns(loop.trigger.triggerId)) {
        this.dropState(loop);
        return;
      }
      const { functionId, config } = loop.trigger;
      const missing = [functionId, config.conditionFunctionId].find((id) => id !== undefined && !this.options.callable(id));
      if (missing !== undefined) {
        this.later(loop, key, UNREGISTERED_RETRY_MS);
        continue;
      }
      loop.running++;
      void this.deliver(loop, key, queue[0]);
    }
  }

  private async deliver(loop: Loop, key: string, call: PendingCall): Promise<void> {
    const generation = loop.generation;
    const { trigger } = loop;
    const attempt = call.attempts + 1;
    const payload: JsonObject = { ...streamTriggerPayload(call.change), delivery_id: call.deliveryId, attempt };
    const outcome = await this.options.run(trigger, payload);
    const { outbox, log } = this.options;
    let pause: number | undefined;
    try {
      if (outcome.kind !== "failed") {
        await outbox.complete(call);
      } else {
        call.attempts = attempt;
        call.lastError = `${outcome.error.code}: ${outcome.error.message}`;
        if (attempt >= (trigger.config.maxAttempts ?? DEFAULT_MAX_ATTEMPTS)) {
          await outbox.bury(call, call.lastError);
          log.warn("trigger call became a dead letter", { trigger_id: trigger.triggerId, delivery_id: call.deliveryId, attempts: attempt });
        } else {
          await outbox.retryLater(call, call.lastError);
          pause = backoff(trigger, attempt);
        }
      }
    } catch (error) {
      // The outcome could not be recorded: the call stays as it was and is tried again.
      log.warn("cannot record a trigger call's outcome", { trigger_id: trigger.triggerId, ...errorFields(error) });
      pause = backoff(trigger, Math.max(1, attempt));
    }
    loop.running--;
    if (loop.stopped || generation !== loop.generation) return;
    const queue = loop.queues.get(key)!;
    if (pause === undefined) {
      queue.shift();
      loop.loaded--;
      if (queue.length === 0) loop.queues.delete(key);
      else loop.ready.push(key);
    } else {
      this.later(loop, key, pause);
    }
    this.pump(loop);
    // Refilled in large takes: one read of the outbox per half window, not one per call.
    if (loop.loaded <= this.window / 2) this.fill(loop);
  }

  /** The item's head starts again after `ms`. */
  private later(loop: Loop, key: string, ms: number): void {
    const timer = setTimeout(() => {
      loop.waiting.delete(key);
      if (loop.stopped) return;
      loop.ready.push(key);
      this.pump(loop);
    }, ms);
    loop.waiting.set(key, timer);
  }

  /**
   * The lease went to another instance: everything taken is forgotten (the new owner
   * delivers it), and the loop looks again later, when it may own the trigger again.
   */
  private dropState(loop: Loop): void {
    loop.generation++;
    loop.queues.clear();
    loop.ready = [];
    loop.loaded = 0;
    for (const timer of loop.waiting.values()) clearTimeout(timer);
    loop.waiting.clear();
  }
}

/**
 * The pause before attempt `attempt + 1`: the initial pause doubled per failed attempt,
 * capped at the maximum, then a random part of it dropped (between half and all of it is
 * kept), so that calls failing together do not retry in lockstep.
 */
export function backoff(trigger: TriggerRecord, attempt: number): number {
  const initial = trigger.config.retryInitialMs ?? DEFAULT_RETRY_INITIAL_MS;
  const max = trigger.config.retryMaxMs ?? DEFAULT_RETRY_MAX_MS;
  const full = Math.min(max, initial * 2 ** Math.min(attempt - 1, 30));
  return Math.round(full / 2 + (Math.random() * full) / 2);
}
