import type { JsonValue } from "../core/json.js";
import { ErrorCode, StreamError } from "../core/errors.js";
import type { FunctionRecord } from "../core/registrations.js";
import { remoteFunction, type RemoteFunctionClient } from "./remote-function.js";

/**
 * An in-process function. It gets its own copy of the payload, so it may change it
 * freely. `signal` aborts when the call times out or the server stops. Its result is
 * taken as JSON (what JSON.stringify keeps of it); returning nothing means "no result".
 */
export type FunctionHandler = (payload: JsonValue, signal: AbortSignal) => unknown;

/** Runs functions wherever they live: in this process, at a URL, or in a connected worker. */
export interface FunctionInvoker {
  invoke(functionId: string, payload: JsonValue, signal: AbortSignal): Promise<JsonValue | undefined>;
}

export type FunctionKind = "in-process" | "remote" | "worker";

export interface FunctionInfo {
  functionId: string;
  kind: FunctionKind;
  /** The base URL of a remote function. */
  url?: string;
}

interface Entry {
  kind: FunctionKind;
  invoker: FunctionInvoker;
  url?: string;
}

/**
 * Every function the service can call, behind one `invoke`, so triggers and the
 * subscription gate never care where a function runs. In-process and worker functions
 * take precedence over a remote function with the same id: they belong to the process
 * that serves the call, remote ones to the shared registrations. Next come worker
 * functions hosted by other instances of the fleet (see fleet-functions.ts), so a worker
 * function wins over a remote one wherever the worker is connected.
 */
export class FunctionRegistry {
  private readonly local = new Map<string, Entry>();
  private elsewhere = new Map<string, Entry>();
  private remote = new Map<string, Entry>();
  /** One client per URL, so that functions served by one backend share its connections. */
  private remoteClients = new Map<string, RemoteFunctionClient>();
  private readonly inFlight = new Set<AbortController>();

  /** Registers (or replaces) an in-process function; the returned function removes it again. */
  registerInProcess(functionId: string, handler: FunctionHandler): () => void {
    const invoker: FunctionInvoker = {
      invoke: async (_id, payload, signal) => asJsonResult(await handler(structuredClone(payload), signal)),
    };
    return this.registerLocal(functionId, { kind: "in-process", invoker });
  }

  /**
   * The seam for the WebSocket bridge: a connected worker offers a function for as
   * long as it stays connected, and removes it with the returned function.
   */
  registerWorker(functionId: string, invoker: FunctionInvoker): () => void {
    return this.registerLocal(functionId, { kind: "worker", invoker });
  }

  /** Replaces every remote function with the stored registrations. */
  replaceRemote(records: readonly FunctionRecord[]): void {
    const clients = new Map<string, RemoteFunctionClient>();
    const remote = new Map<string, Entry>();
    for (const { functionId, url } of records) {
      const invoker = clients.get(url) ?? this.remoteClients.get(url) ?? remoteFunction(url);
      clients.set(url, invoker);
      remote.set(functionId, { kind: "remote", invoker, url });
    }
    for (const [url, client] of this.remoteClients) if (!clients.has(url)) client.close();
    this.remote = remote;
    this.remoteClients = clients;
  }

  /** Replaces the worker functions that other instances of the fleet host. */
  replaceElsewhere(invokers: ReadonlyMap<string, FunctionInvoker>): void {
    this.elsewhere = new Map([...invokers].map(([functionId, invoker]) => [functionId, { kind: "worker", invoker }]));
  }

  /** The ids of the worker functions offered by workers connected to this process, sorted. */
  workerIds(): string[] {
    return [...this.local].filter(([, entry]) => entry.kind === "worker").map(([functionId]) => functionId).sort();
  }

  /** Whether the id belongs to an in-process or worker function. */
  isLocal(functionId: string): boolean {
    return this.local.has(functionId);
  }

  list(): FunctionInfo[] {
    const ids = new Set([...this.local.keys(), ...this.elsewhere.keys(), ...this.remote.keys()]);
    return [...ids].sort().map((functionId) => {
      const { kind, url } = this.find(functionId)!;
      return url === undefined ? { functionId, kind } : { functionId, kind, url };
    });
  }

  /**
   * Calls a function and waits at most `timeoutMs` for its result. Rejects with a
   * StreamError: NOT_FOUND for an unknown id, DEADLINE_EXCEEDED on timeout, or the
   * function's own failure.
   */
  invoke(functionId: string, payload: JsonValue, timeoutMs: number): Promise<JsonValue | undefined> {
    return this.call(functionId, this.find(functionId), payload, timeoutMs);
  }

  /**
   * Like `invoke`, for a call that another instance sent here: only functions of this
   * process answer it (never one elsewhere, so calls cannot go round in circles), and
   * `cancel` ends it early, when the caller gave up.
   */
  invokeHere(functionId: string, payload: JsonValue, timeoutMs: number, cancel: AbortSignal): Promise<JsonValue | undefined> {
    return this.call(functionId, this.local.get(functionId), payload, timeoutMs, cancel);
  }

  private async call(
    functionId: string,
    entry: Entry | undefined,
    payload: JsonValue,
    timeoutMs: number,
    cancel?: AbortSignal,
  ): Promise<JsonValue | undefined> {
    if (!entry) throw new StreamError(ErrorCode.NotFound, `function "${functionId}" is not registered`);
    const controller = new AbortController();
    // Settles the call as soon as it is aborted (timeout, shutdown or cancel), whether or not the function notices.
    const aborted = new Promise<never>((_, reject) => {
      controller.signal.addEventListener("abort", () => reject(controller.signal.reason), { once: true });
    });
    if (cancel?.aborted) controller.abort(cancel.reason);
    cancel?.addEventListener("abort", () => controller.abort(cancel.reason), { once: true });
    const timer = setTimeout(() => {
      controller.abort(new StreamError(ErrorCode.DeadlineExceeded, `function "${functionId}" did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    this.inFlight.add(controller);
    try {
      // Through a promise, so that a handler that throws synchronously is a failed call like any other.
      const call = Promise.resolve().then(() => entry.invoker.invoke(functionId, payload, controller.signal));
      return await Promise.race([call, aborted]);
    } catch (error) {
      throw asStreamError(functionId, controller.signal.aborted ? controller.signal.reason : error);
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(controller);
    }
  }

  /**
   * Ends every call still running with UNAVAILABLE, so that none outlives a server that
   * stopped, and closes the connections kept open to remote functions.
   */
  close(): void {
    for (const controller of [...this.inFlight]) {
      controller.abort(new StreamError(ErrorCode.Unavailable, "the server is shutting down"));
    }
    for (const client of this.remoteClients.values()) client.close();
  }

  private find(functionId: string): Entry | undefined {
    return this.local.get(functionId) ?? this.elsewhere.get(functionId) ?? this.remote.get(functionId);
  }

  private registerLocal(functionId: string, entry: Entry): () => void {
    this.local.set(functionId, entry);
    return () => {
      // A later registration of the same id is not this one's to remove.
      if (this.local.get(functionId) === entry) this.local.delete(functionId);
    };
  }
}

/** An in-process result as the JSON a remote function would have sent: undefined fields dropped, dates as strings. */
function asJsonResult(result: unknown): JsonValue | undefined {
  if (result === undefined) return undefined;
  return JSON.parse(JSON.stringify(result)) as JsonValue;
}

function asStreamError(functionId: string, error: unknown): StreamError {
  if (error instanceof StreamError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new StreamError(ErrorCode.Internal, `function "${functionId}" failed: ${reason}`);
}
