import { isJsonObject, type JsonValue } from "../core/json.js";
import type { EngineHooks, JoinInfo } from "../core/hooks.js";
import { ErrorCode, StreamError } from "../core/errors.js";
import { errorFields, type Log } from "../core/log.js";
import { authPayload, peerAddress, type HandshakeInfo } from "../access/handshake.js";
import type { FunctionRegistry } from "./function-registry.js";
import type { TriggerDispatcher, TriggerOutcome } from "./trigger-dispatcher.js";
import { subscriptionTriggerPayload } from "./trigger-payloads.js";
import type { TriggerRegistry } from "./trigger-registry.js";

export interface GateOptions {
  functions: FunctionRegistry;
  triggers: TriggerRegistry;
  dispatcher: TriggerDispatcher;
  /** The function that authenticates subscribers; none means everyone is let in with a null context. */
  authFunction: string | undefined;
  authTimeoutMs: number;
  log: Log;
}

/**
 * Who may subscribe, and who hears about it. `authenticate` runs once per Subscribe
 * call (or WebSocket handshake) and yields the context stamped into the join and
 * leave payloads. The engine hooks run the `stream:join` triggers before any data is
 * read, and the `stream:leave` triggers once when an accepted subscription ends.
 *
 * Unlike the reference, both gates fail closed: an auth function or join handler that
 * throws, times out or is missing refuses the subscription.
 */
export class SubscriptionGate {
  constructor(private readonly options: GateOptions) {}

  /** The subscriber's context, or UNAUTHENTICATED. */
  async authenticate(handshake: HandshakeInfo): Promise<JsonValue> {
    const { authFunction, authTimeoutMs, functions } = this.options;
    if (authFunction === undefined) return null;
    let result: JsonValue | undefined;
    try {
      result = await functions.invoke(authFunction, authPayload(handshake), authTimeoutMs);
    } catch (error) {
      this.options.log.warn("auth function failed; subscriber refused", { function_id: authFunction, peer: peerAddress(handshake.peer), ...errorFields(error) });
      throw unauthenticated();
    }
    if (result === undefined || result === null) return null;
    if (!isJsonObject(result)) {
      this.options.log.warn("auth function returned something other than {context}; subscriber refused", {
        function_id: authFunction,
        peer: peerAddress(handshake.peer),
        returned: typeof result === "string" ? "a string" : Array.isArray(result) ? "an array" : typeof result,
      });
      throw unauthenticated();
    }
    if (result.unauthorized === true) throw unauthenticated();
    return result.context ?? null;
  }

  readonly hooks: Required<Pick<EngineHooks, "beforeJoin" | "afterLeave">> = {
    beforeJoin: (join) => this.join(join),
    afterLeave: (join) => this.leave(join),
  };

  /** Runs every matching join trigger, all of them even when one refuses, and refuses if any did. */
  private async join(join: JoinInfo): Promise<void> {
    const triggers = this.options.triggers.matching("stream:join", join);
    if (triggers.length === 0) return;
    const payload = subscriptionTriggerPayload(join);
    const outcomes = await Promise.all(triggers.map((trigger) => this.options.dispatcher.run(trigger, payload)));
    if (outcomes.some(refuses)) {
      throw new StreamError(ErrorCode.PermissionDenied, `subscription to ${join.streamName}/${join.groupId} refused`);
    }
  }

  private leave(join: JoinInfo): void {
    const triggers = this.options.triggers.matching("stream:leave", join);
    if (triggers.length === 0) return;
    const payload = subscriptionTriggerPayload(join);
    for (const trigger of triggers) this.options.dispatcher.dispatch(trigger, `leave:${join.subscriptionId}`, payload);
  }
}

/** A join handler refuses by returning `{unauthorized: true}`, and by failing (fail closed). */
function refuses(outcome: TriggerOutcome): boolean {
  if (outcome.kind === "failed") return true;
  return outcome.kind === "done" && isJsonObject(outcome.result) && outcome.result.unauthorized === true;
}

function unauthenticated(): StreamError {
  return new StreamError(ErrorCode.Unauthenticated, "not authenticated");
}
