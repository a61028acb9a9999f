import type { WebSocket } from "ws";
import { isJsonObject, type JsonObject, type JsonValue } from "../core/json.js";
import type { StreamEngine } from "../core/engine.js";
import { ErrorCode, StreamError } from "../core/errors.js";
import { errorFields, type Log } from "../core/log.js";
import type { FunctionsRuntime } from "../functions/functions-runtime.js";
import { TRIGGER_TYPES, type TriggerConfig } from "../core/registrations.js";
import { READ_KEY_REQUIRED } from "../access/read-access.js";
import { CloseCode, type Closing } from "./close-codes.js";
import { callStreamFunction, isStreamFunction, type CallOutcome, type ErrorBody } from "./stream-functions.js";

export interface WorkerSocketOptions {
  engine: StreamEngine;
  runtime: FunctionsRuntime;
  /** Identifies the connection: the worker id, and the prefix of its trigger ids. */
  connectionId: string;
  /**
   * A privileged connection (a trusted backend) may invoke every function and register
   * join and leave triggers; its functions are registered under their own ids, so
   * other triggers and the auth function can name them. A restricted one (a browser)
   * may only invoke `allowedFunctions`, and its functions and triggers are private to it.
   */
  privileged: boolean;
  /**
   * Whether the connection may read streams (see ReadAccess): without it the
   * `stream::*` reads and `stream` triggers are forbidden, even when allowed by name.
   */
  mayRead: boolean;
  allowedFunctions: ReadonlySet<string>;
  /** How long a function the worker invokes through the registry may take. */
  functionTimeoutMs: number;
  /** Unsent bytes beyond which the worker counts as too slow and is disconnected. */
  maxBufferedBytes: number;
  /** Most functions, triggers and unanswered calls of its functions this connection may have. */
  limits: { functions: number; triggers: number; invocations: number };
  close(closing: Closing): void;
  /** Carries the connection id and peer address already. */
  log: Log;
}

/** Client message types of the engine's worker protocol; the first one on `/` selects this protocol. */
export const WORKER_MESSAGE_TYPES: ReadonlySet<string> = new Set([
  "registerfunction",
  "unregisterfunction",
  "invokefunction",
  "invocationresult",
  "registertrigger",
  "unregistertrigger",
  "registertriggertype",
  "unregistertriggertype",
  "reattach",
]);

/** The functions that read streams; a connection that may not read gets `forbidden` for them. */
const READ_FUNCTIONS: ReadonlySet<string> = new Set(["stream::get", "stream::list", "stream::list_groups", "stream::list_all"]);

/** The registration call every SDK makes on connect; a no-op here beyond naming the worker in logs. */
const REGISTER_WORKER = "engine::workers::register";
/** Calls a worker may have running at once before the connection stops reading. */
const MAX_CALLS_IN_FLIGHT = 256;

interface PendingCall {
  resolve(result: JsonValue | undefined): void;
  reject(error: StreamError): void;
}

/**
 * One connection of the engine's worker protocol (protocol 2), enough of it for the
 * iii SDKs: the worker invokes `stream::*` and other functions, registers functions
 * (which join the function registry through its worker seam) and `stream`,
 * `stream:join` and `stream:leave` triggers (kept only while it is connected), and
 * answers the invocations of its functions. On disconnect all of it is removed.
 */
export class WorkerSocket {
  private readonly functionRemovers = new Map<string, () => void>();
  private readonly triggerRemovers = new Map<string, () => void>();
  private readonly pending = new Map<string, PendingCall>();
  private nextInvocation = 1;
  private callsInFlight = 0;
  private workerName: string | undefined;
  private disposed = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly options: WorkerSocketOptions,
  ) {}

  /** Tells the worker its id, as the engine does. */
  welcome(): void {
    this.send({ type: "workerregistered", worker_id: this.options.connectionId });
  }

  /** A client message (already parsed JSON); unknown types are ignored. */
  receive(message: JsonObject): void {
    if (this.disposed) return;
    switch (message.type) {
      case "registerfunction":
        return this.registerFunction(message);
      case "unregisterfunction":
        if (typeof message.id === "string") this.removeFunction(message.id);
        return;
      case "registertrigger":
        return this.registerTrigger(message);
      case "unregistertrigger":
        if (typeof message.id === "string") this.removeTrigger(message.id);
        return;
      case "invokefunction":
        return this.invoked(message);
      case "invocationresult":
        return this.resultReceived(message);
      case "ping":
        return this.send({ type: "pong" });
    }
  }

  /**
   * A message too large to act on (`why` says how large): an invocation is answered with
   * resource_exhausted, as an oversized RPC is, and an oversized result fails the call it
   * answers. Returns false for a message that has no answer, which the caller refuses.
   */
  refuseOversized(message: JsonObject, why: string): boolean {
    if (this.disposed) return true;
    const functionId = typeof message.function_id === "string" ? message.function_id : "";
    if (message.type === "invokefunction") {
      const text = `the message is ${why}; nothing was done`;
      if (typeof message.invocation_id === "string") this.answer(message.invocation_id, functionId, { error: { code: ErrorCode.ResourceExhausted, message: text } });
      else this.options.log.warn(`an oversized fire-and-forget call was dropped: ${text}`, { worker: this.workerName, function_id: functionId });
      return true;
    }
    if (message.type === "invocationresult") {
      const call = typeof message.invocation_id === "string" ? this.pending.get(message.invocation_id) : undefined;
      if (call) {
        this.pending.delete(message.invocation_id as string);
        call.reject(new StreamError(ErrorCode.ResourceExhausted, `worker ${this.describe()} answered with a message of ${why}`));
      }
      return true;
    }
    return false;
  }

  /** Removes the worker's functions and triggers and fails the calls it did not answer. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const remove of this.triggerRemovers.values()) remove();
    for (const remove of this.functionRemovers.values()) remove();
    this.triggerRemovers.clear();
    this.functionRemovers.clear();
    const gone = new StreamError(ErrorCode.Unavailable, `worker ${this.describe()} disconnected`);
    for (const call of this.pending.values()) call.reject(gone);
    this.pending.clear();
  }

  private registerFunction(message: JsonObject): void {
    const id = message.id;
    if (typeof id !== "string") return;
    if (message.invocation !== undefined) {
      this.options.log.warn("a worker registered an HTTP-invoked function, which this server does not support; ignored", { worker: this.workerName, function_id: id });
      return;
    }
    // Registering one of its own functions again replaces it, so only a new id counts.
    if (!this.functionRemovers.has(id) && this.functionRemovers.size >= this.options.limits.functions) {
      const message = `a worker connection may register at most ${this.options.limits.functions} functions`;
      this.send({ type: "functionregistrationresult", id, error: { code: ErrorCode.ResourceExhausted, message } });
      return;
    }
    this.removeFunction(id);
    try {
      const remove = this.options.runtime.registerWorkerFunction(
        this.registryId(id),
        { invoke: (_registryId, payload, signal) => this.call(id, payload, signal) },
        // A restricted connection's functions are its own business, not the operator's listing.
        { listed: this.options.privileged },
      );
      this.functionRemovers.set(id, remove);
    } catch (error) {
      this.options.log.warn("cannot register a worker's function", { worker: this.workerName, function_id: id, ...errorFields(error) });
    }
  }

  private removeFunction(id: string): void {
    this.functionRemovers.get(id)?.();
    this.functionRemovers.delete(id);
  }

  private registerTrigger(message: JsonObject): void {
    const { id, trigger_type: type, function_id: functionId, config } = message;
    if (typeof id !== "string" || typeof type !== "string" || typeof functionId !== "string") return;
    const reply = (error?: ErrorBody) =>
      this.send({ type: "triggerregistrationresult", id, trigger_type: type, function_id: functionId, ...(error ? { error } : {}) });
    if (!(TRIGGER_TYPES as readonly string[]).includes(type)) {
      reply({ code: "trigger_type_not_found", message: `Trigger type not found: ${type}` });
      return;
    }
    const refusal = this.triggerRefusal(type);
    if (refusal) {
      reply({ code: "forbidden", message: refusal });
      return;
    }
    if (config !== undefined && config !== null && !isJsonObject(config)) {
      reply({ code: "deserialization_error", message: `Failed to deserialize ${type} trigger config: expected an object` });
      return;
    }
    if (!this.triggerRemovers.has(id) && this.triggerRemovers.size >= this.options.limits.triggers) {
      reply({ code: ErrorCode.ResourceExhausted, message: `a worker connection may register at most ${this.options.limits.triggers} triggers` });
      return;
    }
    this.removeTrigger(id);
    try {
      const remove = this.options.runtime.registerWorkerTrigger({
        triggerId: this.triggerId(id),
        type,
        functionId: this.registryId(functionId),
        config: this.triggerConfig(config ?? {}),
      });
      this.triggerRemovers.set(id, remove);
      reply();
    } catch (error) {
      const failure = StreamError.from(error);
      reply({ code: failure.code, message: failure.message });
    }
  }

  /** Why this connection may not register a trigger of `type`; undefined when it may. */
  private triggerRefusal(type: string): string | undefined {
    // A stream trigger delivers every later write it matches: a read like any other.
    if (type === "stream" && !this.options.mayRead) return `stream triggers read streams: ${READ_KEY_REQUIRED}`;
    if (this.options.privileged) return undefined;
    if (type !== "stream") return `this connection may not register ${type} triggers`;
    // A stream trigger reads what stream::list reads.
    if (!this.options.allowedFunctions.has("stream::list")) return "this connection may not read streams (stream::list is not allowed)";
    return undefined;
  }

  private triggerConfig(config: JsonObject): TriggerConfig {
    const text = (value: JsonValue | undefined) => (typeof value === "string" ? value : undefined);
    const condition = text(config.condition_function_id);
    return {
      streamName: text(config.stream_name),
      groupId: text(config.group_id),
      itemId: text(config.item_id),
      conditionFunctionId: condition && this.registryId(condition),
    };
  }

  private removeTrigger(id: string): void {
    this.triggerRemovers.get(id)?.();
    this.triggerRemovers.delete(id);
  }

  /** A function the worker invokes; answered with an `invocationresult` unless it is fire-and-forget. */
  private invoked(message: JsonObject): void {
    const invocationId = typeof message.invocation_id === "string" ? message.invocation_id : undefined;
    const functionId = message.function_id;
    if (typeof functionId !== "string") {
      if (invocationId !== undefined) {
        this.answer(invocationId, "", { error: { code: "deserialization_error", message: "function_id must be a string" } });
      }
      return;
    }
    if (++this.callsInFlight === MAX_CALLS_IN_FLIGHT) this.ws.pause();
    void this.run(functionId, message.data).then((outcome) => {
      if (--this.callsInFlight === MAX_CALLS_IN_FLIGHT - 1) this.ws.resume();
      if (invocationId !== undefined) this.answer(invocationId, functionId, outcome);
    });
  }

  private async run(functionId: string, data: JsonValue | undefined): Promise<CallOutcome> {
    if (functionId === REGISTER_WORKER) {
      if (isJsonObject(data) && typeof data.name === "string") this.workerName = data.name;
      return { result: null };
    }
    if (!this.options.privileged && !this.options.allowedFunctions.has(functionId)) {
      return { error: { code: "forbidden", message: `function "${functionId}" may not be invoked on this connection` } };
    }
    if (!this.options.mayRead && READ_FUNCTIONS.has(functionId)) {
      return { error: { code: "forbidden", message: `function "${functionId}" reads streams: ${READ_KEY_REQUIRED}` } };
    }
    if (isStreamFunction(functionId)) return callStreamFunction(this.options.engine, functionId, data);
    try {
      return { result: await this.options.runtime.invoke(functionId, data ?? null, this.options.functionTimeoutMs) };
    } catch (error) {
      const failure = StreamError.from(error);
      const code = failure.code === ErrorCode.NotFound ? "function_not_found" : failure.code;
      return { error: { code, message: failure.message } };
    }
  }

  private answer(invocationId: string, functionId: string, outcome: CallOutcome): void {
    if (this.disposed) return;
    // A missing result (a get of a missing item) leaves the field out, as the reference does.
    this.send({ type: "invocationresult", invocation_id: invocationId, function_id: functionId, ...outcome });
  }

  /** Invokes one of the worker's functions (for a trigger, say) and waits for its result. */
  private call(functionId: string, payload: JsonValue, signal: AbortSignal): Promise<JsonValue | undefined> {
    if (this.disposed) return Promise.reject(new StreamError(ErrorCode.Unavailable, `worker ${this.describe()} disconnected`));
    if (this.pending.size >= this.options.limits.invocations) {
      return Promise.reject(
        new StreamError(
          ErrorCode.ResourceExhausted,
          `worker ${this.describe()} has ${this.pending.size} calls unanswered, the most a connection may have`,
        ),
      );
    }
    const invocationId = String(this.nextInvocation++);
    return new Promise((resolve, reject) => {
      this.pending.set(invocationId, { resolve, reject });
      // The registry has already settled the call on timeout; a late answer finds nothing.
      signal.addEventListener("abort", () => this.pending.delete(invocationId), { once: true });
      this.send({ type: "invokefunction", invocation_id: invocationId, function_id: functionId, data: payload });
    });
  }

  private resultReceived(message: JsonObject): void {
    const invocationId = message.invocation_id;
    if (typeof invocationId !== "string") return;
    const call = this.pending.get(invocationId);
    if (!call) return;
    this.pending.delete(invocationId);
    const error = message.error;
    if (error === undefined || error === null) {
      call.resolve(message.result);
      return;
    }
    const body = isJsonObject(error) ? error : {};
    const code = typeof body.code === "string" ? body.code : "unknown";
    const text = typeof body.message === "string" ? body.message : JSON.stringify(error);
    call.reject(new StreamError(ErrorCode.Internal, `${code}: ${text}`));
  }

  private send(message: object): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(JSON.stringify(message));
    if (this.ws.bufferedAmount > this.options.maxBufferedBytes) {
      this.options.close({ code: CloseCode.SlowConsumer, reason: "slow consumer: the worker does not read its messages" });
    }
  }

  /**
   * The id under which a function of this worker is registered: its own for a
   * privileged worker, a private one for a restricted connection, so that a browser
   * can neither replace a backend's function nor be named by anyone else's trigger.
   */
  private registryId(functionId: string): string {
    return this.options.privileged ? functionId : `${this.options.connectionId}/${functionId}`;
  }

  /** Trigger ids are the worker's own, scoped to the connection so that workers cannot clash. */
  private triggerId(id: string): string {
    return `${this.options.connectionId}/${id}`;
  }

  private describe(): string {
    return this.workerName === undefined ? this.options.connectionId : `${this.options.connectionId} (${this.workerName})`;
  }
}
