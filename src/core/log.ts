/**
 * Where the server reports what it cannot return to a caller (a trigger that failed, a
 * worker that misbehaved, a store that cannot write) and what an operator follows (the
 * start-up configuration, the access log). Records are structured: a message saying
 * what happened and fields saying what it concerns (`method`, `stream`, `group`,
 * `trigger_id`, `function_id`, `peer`, ...), never a secret.
 *
 * The port is small so that any logger fits behind it; the command line puts pino
 * there, tests a `silentLog` or a `RecordingLog`.
 */
export interface Log {
  fatal(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
  trace(message: string, fields?: LogFields): void;
  /** Whether records of `level` are kept: a hot path skips building fields nobody reads. */
  enabled(level: LogLevel): boolean;
  /** A log whose records all carry `fields` besides their own. */
  child(fields: LogFields): Log;
}

/** Most severe first, as pino orders them. */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFields = Readonly<Record<string, unknown>>;

export interface LogRecord {
  level: LogLevel;
  message: string;
  fields: Record<string, unknown>;
}

const noop = (): void => undefined;

/** Keeps nothing: for tests and embedders that want no output. */
export const silentLog: Log = {
  fatal: noop,
  error: noop,
  warn: noop,
  info: noop,
  debug: noop,
  trace: noop,
  enabled: () => false,
  child: () => silentLog,
};

/**
 * Keeps every record at or above `level` in memory, for tests that assert on what was
 * logged. A child shares its parent's record list.
 */
export class RecordingLog implements Log {
  readonly records: LogRecord[];
  private readonly threshold: number;

  constructor(
    readonly level: LogLevel = "trace",
    private readonly bound: LogFields = {},
    records: LogRecord[] = [],
  ) {
    this.threshold = LOG_LEVELS.indexOf(level);
    this.records = records;
  }

  fatal(message: string, fields?: LogFields): void {
    this.add("fatal", message, fields);
  }
  error(message: string, fields?: LogFields): void {
    this.add("error", message, fields);
  }
  warn(message: string, fields?: LogFields): void {
    this.add("warn", message, fields);
  }
  info(message: string, fields?: LogFields): void {
    this.add("info", message, fields);
  }
  debug(message: string, fields?: LogFields): void {
    this.add("debug", message, fields);
  }
  trace(message: string, fields?: LogFields): void {
    this.add("trace", message, fields);
  }

  enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) <= this.threshold;
  }

  child(fields: LogFields): Log {
    return new RecordingLog(this.level, { ...this.bound, ...fields }, this.records);
  }

  /** The records whose message contains `text`. */
  find(text: string): LogRecord[] {
    return this.records.filter((record) => record.message.includes(text));
  }

  private add(level: LogLevel, message: string, fields: LogFields | undefined): void {
    if (this.enabled(level)) this.records.push({ level, message, fields: { ...this.bound, ...fields } });
  }
}

/** What an error record says of a failure: its message, and its code when it has one. */
export function errorFields(error: unknown): { error: string; code?: string } {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === "string" ? { error: error.message, code } : { error: error.message };
  }
  return { error: String(error) };
}
