import type { JsonValue } from "../core/json.js";
import { ErrorCode, StreamError } from "../core/errors.js";
import type { FunctionRecord } from "../core/registrations.js";
import { remoteFunction, type RemoteFunctionClient } from "./remote-function.js";
import type { FunctionHandler, FunctionInfo, FunctionInvoker, FunctionKind } from "./types.js";


interface Entry {
  kind: FunctionKind;
  invoker: FunctionInvoker;
  url?: string;
  /** False for a restricted worker connection's functions: callable by its own triggers, never listed. */
  listed?: boolean;
}

/**
 * Every function the service can call, behind one `invoke`, so triggers and the
 * subscription gate never care where a function runs. In-process and worker functions
 * take precedence over a remote function with the same id: they belong to the process
 * that serves the call, remote ones to the shared registrations. Next come the fleet's:
 * worker functions hosted by other instances (see fleet-membership.ts), so a worker
 * function wins over a remote one wherever the worker is connected. Three maps, looked
 * up in this order: `local` (in-process and worker functions of this process), `fleet`
 * (worker functions of other instances) and `remote` (stored, reached at a URL).
 */
export class FunctionRegistry {
  private readonly local = new Map<string, Entry>();
  private fleet = new Map<string, Entry>();
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
  registerWorker(functionId: string, invoker: FunctionInvoker, listed = true): () => void {
    return this.registerLocal(functionId, { kind: "worker", invoker, listed });
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

  /** Replaces the worker functions that other instances of the fleet host; those in `unlisted` are callable but not listed. */
  replaceFleet(invokers: ReadonlyMap<string, FunctionInvoker>, unlisted: ReadonlySet<string> = new Set()): void {
    this.fleet = new Map(
      [...invokers].map(([functionId, invoker]) => [functionId, { kind: "worker", invoker, listed: !unlisted.has(functionId) }]),
    );
  }

  /** The ids of the worker functions offered by workers connected to this process, sorted. */
  workerIds(): string[] {
    return [...this.local].filter(([, entry]) => entry.kind === "worker").map(([functionId]) => functionId).sort();
  }

  /** Those of `workerIds` that are not listed (a restricted connection's). */
  unlistedWorkerIds(): string[] {
    return [...this.local].filter(([, entry]) => entry.kind === "worker" && entry.listed === false).map(([functionId]) => functionId).sort();
  }

  /** Whether a function with the id can be called from here now (of any kind). */
  has(functionId: string): boolean {
    return this.find(functionId) !== undefined;
  }

  /** Whether the id belongs to an in-process or worker function. */
  isLocal(functionId: string): boolean {
    return this.local.has(functionId);
  }

  list(): FunctionInfo[] {
    const unlisted = [...this.local, ...this.fleet].filter(([, entry]) => entry.listed === false).map(([functionId]) => functionId);
    const ids = new Set([...this.local.keys(), ...this.fleet.keys(), ...this.remote.keys()]);
    for (const functionId of unlisted) ids.delete(functionId);
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
   * Like `invoke`, for a call that another instance sent here: only the local functions
   * answer it (never one of the fleet's, so calls cannot go round in circles), and
   * `cancel` ends it early, when the caller gave up.
   */
  invokeLocal(functionId: string, payload: JsonValue, timeoutMs: number, cancel: AbortSignal): Promise<JsonValue | undefined> {
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
    return this.local.get(functionId) ?? this.fleet.get(functionId) ?? this.remote.get(functionId);
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
