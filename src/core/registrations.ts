/** A function reached at a URL (`iii.stream.v1.FunctionService`). */
export interface FunctionRecord {
  functionId: string;
  /** The base URL of the FunctionService, e.g. "http://127.0.0.1:9000". */
  url: string;
}

export const TRIGGER_TYPES = ["stream", "stream:join", "stream:leave"] as const;
export type TriggerType = (typeof TRIGGER_TYPES)[number];

/** What a trigger reacts to. An absent field matches anything. */
export interface TriggerConfig {
  /** Required for `stream` triggers. */
  streamName?: string;
  groupId?: string;
  itemId?: string;
  /** Called first with the same payload; only a `false` result skips the handler. */
  conditionFunctionId?: string;
  /** `stream` triggers: how calls are delivered (see TriggerDelivery). Absent: at most once. */
  delivery?: TriggerDelivery;
  /** At least once: attempts before a call becomes a dead letter. Absent: DEFAULT_MAX_ATTEMPTS. */
  maxAttempts?: number;
  /** At least once: the first retry's pause, doubled per retry, with jitter. Absent: DEFAULT_RETRY_INITIAL_MS. */
  retryInitialMs?: number;
  /** At least once: the longest pause between attempts. Absent: DEFAULT_RETRY_MAX_MS. */
  retryMaxMs?: number;
}

/**
 * `at_most_once`: called from memory after the write, lost by a crash or a failing
 * function (cheap). `at_least_once`: stored with the change in the same atomic step and
 * retried until it succeeds or becomes a dead letter.
 */
export type TriggerDelivery = "at_most_once" | "at_least_once";

/** Ten attempts: with the default pauses, about six minutes of retrying before a dead letter. */
export const DEFAULT_MAX_ATTEMPTS = 10;
/** One second: a function restarting or a brief network fault is over by the second try or so. */
export const DEFAULT_RETRY_INITIAL_MS = 1_000;
/** One minute: a function that is down for long is still tried often enough to notice its return. */
export const DEFAULT_RETRY_MAX_MS = 60_000;

export interface TriggerRecord {
  triggerId: string;
  type: TriggerType;
  functionId: string;
  config: TriggerConfig;
}

export interface StoredRegistrations {
  functions: FunctionRecord[];
  triggers: TriggerRecord[];
}

/**
 * Where remote functions and triggers are kept, so that they survive a restart and
 * are shared by every instance that uses the same storage. Records are plain JSON;
 * a store may serialise them as it likes. In-process and worker functions are never
 * stored: they live as long as the process or the connection that offers them.
 *
 * The server treats the store as the truth: after every change it makes, and
 * whenever `onChange` fires, it reloads everything with `load()`. A store therefore
 * only has to keep records by id and announce that something changed.
 */
export interface RegistrationStore {
  /** Every stored function and trigger, in any order. */
  load(): Promise<StoredRegistrations>;
  /** Adds the function, or replaces the one with the same `functionId`. */
  saveFunction(record: FunctionRecord): Promise<void>;
  /** Removes a function; resolves false when there was none. */
  deleteFunction(functionId: string): Promise<boolean>;
  /** Adds the trigger, or replaces the one with the same `triggerId`. */
  saveTrigger(record: TriggerRecord): Promise<void>;
  /** Removes a trigger; resolves false when there was none. */
  deleteTrigger(triggerId: string): Promise<boolean>;
  /**
   * Calls `listener` after the stored registrations changed, by this instance or by
   * another one sharing the store. Notifications carry no content and may be repeated
   * or merged: the listener reloads everything. Returns a function that stops the calls.
   */
  onChange(listener: () => void): () => void;
}
