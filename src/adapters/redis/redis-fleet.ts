import { randomUUID } from "node:crypto";
import type { JsonValue } from "../../core/json.js";
import { ErrorCode, StreamError } from "../../core/errors.js";
import { CallNotDelivered, type FleetCallHandler, type FunctionFleet, type HostedEntry, type Hosting } from "../../functions/fleet-functions.js";
import type { TriggerRecord } from "../../core/registrations.js";
import type { RedisConnections } from "./connections.js";
import type { KeyLayout, RegistrationKeys } from "./key-layout.js";
import { withRedisErrors } from "./redis-errors.js";
import { scripts, type RedisClient } from "./scripts.js";
import { StandingChannel } from "./standing-channel.js";

/**
 * What travels on an instance's channel, as JSON: calls to its worker functions, the
 * caller's cancel when it gave up, and replies to the calls it made itself.
 */
type FleetMessage =
  | { kind: "call"; callId: string; functionId: string; payload: JsonValue; replyTo: string }
  | { kind: "cancel"; callId: string }
  | { kind: "reply"; callId: string; result?: JsonValue; error?: { code: ErrorCode; message: string } };

/** An instance's entry in the `hosted` hash. */
interface StoredEntry {
  functions: string[];
  triggers: TriggerRecord[];
}

/**
 * The entry for what an instance hosts, in an order that does not depend on the order of
 * registration, so that an unchanged set is not announced as a change; "" for nothing.
 */
function entryJson(functionIds: readonly string[], triggers: readonly TriggerRecord[]): string {
  if (functionIds.length === 0 && triggers.length === 0) return "";
  const entry: StoredEntry = {
    functions: [...functionIds].sort(),
    triggers: [...triggers].sort((a, b) => (a.triggerId < b.triggerId ? -1 : a.triggerId > b.triggerId ? 1 : 0)),
  };
  return JSON.stringify(entry);
}

interface WaitingCall {
  resolve: (result: JsonValue | undefined) => void;
  reject: (error: unknown) => void;
}

/**
 * The fleet over Redis. Each instance has a random id and a shard channel of its own,
 * which it subscribes to on start. An instance whose workers offer functions or triggers
 * keeps an entry (its id, those function ids and trigger records, an expiry) under the
 * registrations' hash tag and renews it every third of `ttlMs`; the renewals also drop
 * the entries of instances that stopped renewing theirs (a crashed process), so these
 * vanish within about `ttlMs`.
 *
 * A call is published on the host's channel with a reply address; SPUBLISH says how many
 * subscribers got it, so a call to an instance that is gone fails at once (not delivered)
 * instead of waiting for its timeout. The host runs it and publishes the reply on the
 * caller's channel. A call whose reply is lost (a connection dropped) ends with the
 * caller's timeout; none is ever resent, so none runs twice.
 */
export class RedisFleet implements FunctionFleet {
  readonly instanceId = randomUUID();
  private readonly commands: RedisClient;
  private readonly keys: RegistrationKeys;
  private readonly inbox: StandingChannel;
  /** What this instance hosts as last announced (see fleet-announce.lua; "" for nothing); renewals repeat it. */
  private entryJson = "";
  private handler: FleetCallHandler | undefined;
  private renewal: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly waiting = new Map<string, WaitingCall>();
  private readonly serving = new Map<string, AbortController>();
  private readonly replies = new Set<Promise<void>>();

  constructor(
    connections: RedisConnections,
    private readonly layout: KeyLayout,
    private readonly ttlMs: number,
  ) {
    this.commands = connections.commands;
    this.keys = layout.registrations;
    this.inbox = new StandingChannel(connections, layout.instanceChannel(this.instanceId), (text) => this.receive(text), () => undefined);
  }

  async start(handler: FleetCallHandler): Promise<void> {
    if (this.closed) throw new StreamError(ErrorCode.Unavailable, "the Redis adapter is closed");
    // One instance per adapter: a second server on the same adapter would take its calls.
    if (this.handler) throw new Error("this Redis adapter already serves another server's worker functions");
    this.handler = handler;
    await withRedisErrors("subscribing to this instance's call channel", () => this.inbox.open());
    this.renewal ??= setInterval(() => {
      // A failed renewal (Redis away) is retried by the next one; health checks report the outage.
      this.sendEntry().catch(() => undefined);
    }, Math.max(1, Math.floor(this.ttlMs / 3)));
    this.renewal.unref();
  }

  async announce({ functionIds, triggers }: Hosting): Promise<void> {
    if (this.closed) return;
    this.entryJson = entryJson(functionIds, triggers);
    await withRedisErrors("announcing this instance's worker functions and triggers", () => this.sendEntry());
  }

  hosted(): Promise<HostedEntry[]> {
    return withRedisErrors("reading the fleet's worker functions and triggers", async () => {
      const reply = (await scripts.fleetHosted.run(this.commands, [this.keys.instances, this.keys.hosted], [])) as string[];
      const hosted: HostedEntry[] = [];
      for (let i = 0; i < reply.length; i += 2) {
        const entry = JSON.parse(reply[i + 1]) as StoredEntry;
        hosted.push({ instanceId: reply[i], functionIds: entry.functions, triggers: entry.triggers });
      }
      return hosted;
    });
  }

  async call(instanceId: string, functionId: string, payload: JsonValue, signal: AbortSignal): Promise<JsonValue | undefined> {
    if (!this.handler || this.closed) throw new StreamError(ErrorCode.Unavailable, "this instance does not take part in the fleet now");
    const callId = randomUUID();
    const answer = new Promise<JsonValue | undefined>((resolve, reject) => this.waiting.set(callId, { resolve, reject }));
    // The answer may fail while the call is still being published; it is awaited below.
    answer.catch(() => undefined);
    const cancel = () => {
      this.waiting.get(callId)?.reject(signal.reason);
      this.send(instanceId, { kind: "cancel", callId }).catch(() => undefined);
    };
    signal.addEventListener("abort", cancel, { once: true });
    try {
      const receivers = await withRedisErrors("calling another instance", () =>
        this.send(instanceId, { kind: "call", callId, functionId, payload, replyTo: this.instanceId }),
      );
      if (receivers === 0) {
        throw new CallNotDelivered(`instance ${instanceId}, whose worker offers function "${functionId}", is not reachable`);
      }
      return await answer;
    } finally {
      signal.removeEventListener("abort", cancel);
      this.waiting.delete(callId);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.renewal);
    if (!this.handler) return;
    this.entryJson = "";
    // Others stop calling here at once; if Redis is away, the entry expires instead.
    await this.sendEntry(0).catch(() => undefined);
    const stopping = new StreamError(ErrorCode.Unavailable, "the instance hosting the function is shutting down");
    for (const controller of this.serving.values()) controller.abort(stopping);
    await Promise.all(this.replies);
    for (const call of this.waiting.values()) call.reject(new StreamError(ErrorCode.Unavailable, "the server is shutting down"));
    this.waiting.clear();
    await this.inbox.close().catch(() => undefined);
  }

  private async sendEntry(ttlMs = this.ttlMs): Promise<void> {
    await scripts.fleetAnnounce.run(
      this.commands,
      [this.keys.instances, this.keys.hosted],
      [this.instanceId, String(ttlMs), this.entryJson, this.keys.changes],
    );
  }

  /** Publishes on an instance's channel; resolves with how many subscribers got it. */
  private async send(instanceId: string, message: FleetMessage): Promise<number> {
    return Number(await this.commands.spublish(this.layout.instanceChannel(instanceId), JSON.stringify(message)));
  }

  private receive(text: string): void {
    let message: FleetMessage;
    try {
      message = JSON.parse(text) as FleetMessage;
    } catch {
      // Not from an instance of ours; nobody waits for an answer to it.
      return;
    }
    if (message.kind === "call") this.serve(message);
    else if (message.kind === "cancel") this.serving.get(message.callId)?.abort(new StreamError(ErrorCode.Aborted, "the caller gave up"));
    else this.settle(message);
  }

  private settle(reply: Extract<FleetMessage, { kind: "reply" }>): void {
    const call = this.waiting.get(reply.callId);
    if (!call) return;
    if (reply.error) call.reject(new StreamError(reply.error.code, reply.error.message));
    else call.resolve(reply.result);
  }

  private serve(call: Extract<FleetMessage, { kind: "call" }>): void {
    const controller = new AbortController();
    this.serving.set(call.callId, controller);
    const replied = (async () => {
      let reply: FleetMessage;
      try {
        if (!this.handler || this.closed) throw new StreamError(ErrorCode.Unavailable, "the instance hosting the function is shutting down");
        const result = await this.handler(call.functionId, call.payload, controller.signal);
        reply = { kind: "reply", callId: call.callId, result };
      } catch (error) {
        const failure = StreamError.from(error);
        reply = { kind: "reply", callId: call.callId, error: { code: failure.code, message: failure.message } };
      } finally {
        this.serving.delete(call.callId);
      }
      // A caller that is gone no longer waits for the reply.
      await this.send(call.replyTo, reply).catch(() => undefined);
    })();
    this.replies.add(replied);
    void replied.finally(() => this.replies.delete(replied));
  }
}
