import type { JsonValue } from "../core/json.js";

/**
 * The shapes that the files of functions/ share, kept below all of them so that none has
 * to import another for a type (the registry, the remote client and the fleet each
 * implement or use FunctionInvoker).
 */

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

/** Runs a call that another instance sent to one of this instance's functions. */
export type FleetCallHandler = (functionId: string, payload: JsonValue, signal: AbortSignal) => Promise<JsonValue | undefined>;
