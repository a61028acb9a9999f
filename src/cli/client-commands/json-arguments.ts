import { text } from "node:stream/consumers";
import type { JsonValue } from "../../core/json.js";
import { UsageError } from "./exit-codes.js";

/**
 * A JSON value given on the command line, or read whole from standard input when the argument
 * is `-` (for values too large or awkward to quote). `what` names the argument in errors.
 */
export async function jsonArgument(argument: string, what: string, stdin: NodeJS.ReadableStream = process.stdin): Promise<JsonValue> {
  const source = argument === "-" ? await text(stdin) : argument;
  if (argument === "-" && source.trim() === "") throw new UsageError(`${what} was to come on standard input (-), which was empty`);
  try {
    return JSON.parse(source) as JsonValue;
  } catch (error) {
    const from = argument === "-" ? " on standard input" : "";
    throw new UsageError(`${what}${from} is not JSON (${(error as Error).message}); quote strings, as in '"text"'`);
  }
}

/** A flag's value that must be a whole number of at least 0 (a revision or an offset). */
export function countFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new UsageError(`--${flag} takes a whole number of at least 0, not '${value}'`);
  return Number(value);
}
