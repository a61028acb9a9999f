import { pino, type Logger } from "pino";
import pinoPretty from "pino-pretty";
import type { Log, LogFields, LogLevel } from "../core/log.js";
import { currentTrace } from "../core/trace-context.js";

export type LogFormat = "json" | "pretty";

export interface PinoLogOptions {
  /**
   * Least severe level written.
   * @default "info": failures, warnings and the start-up line, not one line per call
   */
  level?: LogLevel;
  /**
   * JSON lines (for a collector) or pino-pretty's coloured lines (for a person).
   * @default "json"
   */
  format?: LogFormat;
  /**
   * File descriptor written to.
   * @default 1 (standard output), where a container's log collector reads
   */
  fd?: number;
}

/**
 * The Log port over pino. Writes are synchronous: a record is on its descriptor before
 * the call returns, so a process that exits (or is killed) right after a failure still
 * says why; at the default level records are rare enough for that to cost nothing.
 */
export function pinoLog(options: PinoLogOptions = {}): Log {
  const fd = options.fd ?? 1;
  const pretty = options.format === "pretty";
  const destination = pretty
      ? pinoPretty({ destination: fd, sync: true, colorize: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" })
      : pino.destination({ dest: fd, sync: true });
  const logger = pino(
    {
      level: options.level ?? "info",
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      // pino merges the record into what mixin returns: it must be a fresh object every time.
      mixin: traceFields,
      // A collector reads "level":"error" without knowing pino's numbers; pino-pretty wants the numbers.
      ...(pretty ? {} : { formatters: { level: (label: string) => ({ level: label }) } }),
    },
    destination,
  );
  return new PinoLog(logger);
}

/** The trace and span ids of the request being handled, so its lines can be found from a trace. */
function traceFields(): Record<string, string> {
  const trace = currentTrace();
  return trace === undefined ? {} : { trace_id: trace.traceId, span_id: trace.spanId };
}

class PinoLog implements Log {
  constructor(private readonly logger: Logger) {}

  fatal(message: string, fields?: LogFields): void {
    this.logger.fatal(fields ?? {}, message);
  }
  error(message: string, fields?: LogFields): void {
    this.logger.error(fields ?? {}, message);
  }
  warn(message: string, fields?: LogFields): void {
    this.logger.warn(fields ?? {}, message);
  }
  info(message: string, fields?: LogFields): void {
    this.logger.info(fields ?? {}, message);
  }
  debug(message: string, fields?: LogFields): void {
    this.logger.debug(fields ?? {}, message);
  }
  trace(message: string, fields?: LogFields): void {
    this.logger.trace(fields ?? {}, message);
  }
  enabled(level: LogLevel): boolean {
    return this.logger.isLevelEnabled(level);
  }
  child(fields: LogFields): Log {
    return new PinoLog(this.logger.child(fields));
  }
}
