import { randomUUID } from "node:crypto";
import type { JsonValue } from "../core/json.js";
import { ErrorCode, StreamError } from "../core/errors.js";
import type { FleetBus } from "../core/fleet-bus.js";
import type { FleetCallHandler } from "./types.js";

/**
 * What travels between instances, as JSON text over the bus: calls to worker functions,
 * the caller's cancel when it gave up, and replies. The field order is part of the wire
 * format (instances of different versions share one Redis), so it stays as it is.
 */
type FleetMessage =
  | { kind: "call"; callId: string; functionId: string; payload: JsonValue; replyTo: string }
  | { kind: "cancel"; callId: string }
  | { kind: "reply"; callId: string; result?: JsonValue; error?: { code: ErrorCode; message: string } };

/** A call that did not reach the instance it was sent to, so it did not run. */
export class CallNotDelivered extends StreamError {
  constructor(message: string) {
    super(ErrorCode.Unavailable, message);
  }
}

interface WaitingCall {
  resolve: (result: JsonValue | undefined) => void;
  reject: (error: unknown) => void;
}

/**
 * Calls between the instances of a fleet, over any FleetBus. A call is sent to the host
 * with a reply address and a fresh id; the bus says whether it was delivered, so a call to
 * an instance that is gone fails at once (CallNotDelivered) instead of waiting for its
 * timeout. The host runs it and sends the reply, a result or an error with its code, to
 * the caller. A caller that gives up (its signal aborts) sends a cancel, which aborts the
 * handler on the host. A call whose reply is lost ends with the caller's own timeout;
 * none is ever resent, so none runs twice.
 */
export class FleetCalls {
  private handler: FleetCallHandler | undefined;
  private closed = false;
  private readonly waiting = new Map<string, WaitingCall>();
  private readonly serving = new Map<string, AbortController>();
  private readonly replies = new Set<Promise<void>>();

  constructor(private readonly bus: FleetBus) {}

  /** This instance's id on the bus. */
  get instanceId(): string {
    return this.bus.instanceId;
  }

  /** Starts serving calls from other instances with `handler` (and so opens the bus). */
  async start(handler: FleetCallHandler): Promise<void> {
    this.handler = handler;
    await this.bus.open((text) => this.receive(text));
  }

  /**
   * Calls a function on another instance; `signal` cancels the call there too. Rejects
   * with CallNotDelivered when the call never reached that instance, so that it did not
   * run and another host may be tried; with the host's error (its code kept) when the
   * function failed there.
   */
  async call(instanceId: string, functionId: string, payload: JsonValue, signal: AbortSignal): Promise<JsonValue | undefined> {
    if (!this.handler || this.closed) throw new StreamError(ErrorCode.Unavailable, "this instance does not take part in the fleet now");
    const callId = randomUUID();
    const answer = new Promise<JsonValue | undefined>((resolve, reject) => this.waiting.set(callId, { resolve, reject }));
    // The answer may fail while the call is still being sent; it is awaited below.
    answer.catch(() => undefined);
    const cancel = () => {
      this.waiting.get(callId)?.reject(signal.reason);
      this.send(instanceId, { kind: "cancel", callId }).catch(() => undefined);
    };
    signal.addEventListener("abort", cancel, { once: true });
    try {
      const delivered = await this.send(instanceId, { kind: "call", callId, functionId, payload, replyTo: this.bus.instanceId });
      if (!delivered) {
        throw new CallNotDelivered(`instance ${instanceId}, whose worker offers function "${functionId}", is not reachable`);
      }
      return await answer;
    } finally {
      signal.removeEventListener("abort", cancel);
      this.waiting.delete(callId);
    }
  }

  /**
   * Tries the hosts, starting at a random one so that calls spread over them, until one
   * takes the call. Only an undelivered call moves on: one that was delivered may have
   * run, and must not run twice.
   */
  async callAnyHost(instances: readonly string[], functionId: string, payload: JsonValue, signal: AbortSignal): Promise<JsonValue | undefined> {
    const first = Math.floor(Math.random() * instances.length);
    let undelivered: CallNotDelivered | undefined;
    for (let i = 0; i < instances.length; i++) {
      try {
        return await this.call(instances[(first + i) % instances.length], functionId, payload, signal);
      } catch (error) {
        if (!(error instanceof CallNotDelivered)) throw error;
        undelivered = error;
      }
    }
    throw undelivered;
  }

  /**
   * Leaves the fleet (others stop calling here), answers the calls being served here with
   * UNAVAILABLE unless they finish first, fails this instance's own pending calls with
   * UNAVAILABLE, and closes the bus.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.handler) {
      await this.bus.close();
      return;
    }
    await this.bus.leave();
    const stopping = new StreamError(ErrorCode.Unavailable, "the instance hosting the function is shutting down");
    for (const controller of this.serving.values()) controller.abort(stopping);
    await Promise.all(this.replies);
    for (const call of this.waiting.values()) call.reject(new StreamError(ErrorCode.Unavailable, "the server is shutting down"));
    this.waiting.clear();
    await this.bus.close();
  }

  private send(instanceId: string, message: FleetMessage): Promise<boolean> {
    return this.bus.send(instanceId, JSON.stringify(message));
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
