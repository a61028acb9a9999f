import { parseArgs } from "node:util";
import { CLIENT_FLAGS, type ClientCommandName, type ClientFlag } from "./command-line.js";
import { COMMANDS } from "./commands.js";
import { ExitCode, exitCodeForStatus, UsageError } from "./exit-codes.js";
import { commandHelp, DEFAULT_URL } from "./help.js";
import { countFlag } from "./json-arguments.js";
import { outputFormat } from "./output.js";
import type { StreamError } from "../../client/node.js";

/** Flags that only some commands take; the others refuse them rather than ignore them. */
const OPTIONAL_FLAGS: ClientFlag[] = ["if-revision", "from-offset", "item", "output"];

/**
 * Runs one client command: checks its command line, connects, runs it, and turns a failure
 * into a message on standard error and the exit code of its class.
 */
export async function runClientCommand(name: ClientCommandName, argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<ExitCode> {
  const spec = COMMANDS[name];
  // A reader that went away (`| head`) is not a failure of the command.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(ExitCode.Ok);
    throw error;
  });
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: CLIENT_FLAGS, allowPositionals: true, strict: true });
  } catch (error) {
    return usage(name, (error as Error).message);
  }
  const { values: flags } = parsed;
  if (flags.help) {
    process.stdout.write(commandHelp(name, spec));
    return ExitCode.Ok;
  }
  // positionals[0] is the command's name itself.
  const args = parsed.positionals.slice(1);
  const required = spec.args.filter((arg) => !arg.startsWith("["));
  if (args.length < required.length || args.length > spec.args.length) {
    const wanted = spec.args.length === 0 ? "no arguments" : spec.args.join(" ");
    return usage(name, `${name} takes ${wanted}; got ${args.length === 0 ? "none" : args.map((arg) => JSON.stringify(arg)).join(" ")}`);
  }
  const refused = OPTIONAL_FLAGS.find((flag) => flags[flag] !== undefined && !spec.flags.includes(flag));
  if (refused !== undefined) return usage(name, `${name} does not take --${refused}`);
  if (args.filter((arg) => arg === "-").length > 1) return usage(name, "only one argument can come from standard input (-)");

  let connection: { url: string; apiKey: string | undefined };
  let context;
  try {
    connection = { url: serverUrl(flags.url ?? env.III_STREAM_URL ?? DEFAULT_URL), apiKey: (flags["api-key"] ?? env.III_STREAM_API_KEY) || undefined };
    context = {
      args,
      ifRevision: countFlag(flags["if-revision"], "if-revision"),
      fromOffset: countFlag(flags["from-offset"], "from-offset"),
      item: flags.item,
      format: outputFormat(flags.output, process.stdout.isTTY === true),
    };
  } catch (error) {
    return usage(name, (error as Error).message);
  }

  // Loaded only now, so that --help and a usage error answer without it.
  const { createStreamClient, StreamError } = await import("../../client/node.js");
  const api = createStreamClient({ baseUrl: connection.url, apiKey: connection.apiKey });
  try {
    return await spec.run({ ...context, api });
  } catch (error) {
    if (error instanceof UsageError) return usage(name, error.message);
    if (!(error instanceof StreamError)) {
      process.stderr.write(`iii-stream: ${(error as Error)?.stack ?? String(error)}\n`);
      return ExitCode.Failure;
    }
    process.stderr.write(`iii-stream: ${failureMessage(error, connection)}\n`);
    return exitCodeForStatus(error.code);
  } finally {
    api.close();
  }
}

/** A failed call's code and message, with what to check when the fix is on this side. */
export function failureMessage(error: StreamError, connection: { url: string; apiKey: string | undefined }): string {
  const hint =
    error.code === "unavailable"
      ? ` (is a server running at ${connection.url}? --url or III_STREAM_URL names another)`
      : error.code === "unauthenticated" && connection.apiKey === undefined
        ? " (no API key was given: --api-key or III_STREAM_API_KEY)"
        : "";
  return `${error.code}: ${error.message}${hint}`;
}

function usage(name: ClientCommandName, message: string): ExitCode {
  process.stderr.write(`iii-stream ${name}: ${message}\nRun 'iii-stream ${name} --help' for its usage.\n`);
  return ExitCode.Usage;
}

/** The server's base URL, refused here when it is not one rather than as an odd network error. */
function serverUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--url takes a URL such as ${DEFAULT_URL}, not '${text}'`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`--url must be http:// or https://, not '${text}'`);
  return text.replace(/\/+$/, "");
}
