/**
 * `--name value` flags of the single-purpose bench scripts (the suite's runner has its own,
 * richer command line). A flag given twice takes its first value.
 */

/** The value after `--name`, or `fallback` when the flag is absent. */
export function textFlag(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  if (index < 0) return fallback;
  const value = process.argv[index + 1];
  if (value === undefined) throw new Error(`--${name} needs a value`);
  return value;
}

/** The number after `--name`, or `fallback` when the flag is absent; anything but a number stops the script. */
export function numberFlag(name: string, fallback: number): number {
  const text = textFlag(name, String(fallback));
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value)) throw new Error(`--${name} must be a number, not ${JSON.stringify(text)}`);
  return value;
}
