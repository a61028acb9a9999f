import { parseArgs } from "node:util";
import { CLIENT_FLAGS, isClientCommand } from "./client-commands/command-line.js";
import { SERVE_FLAGS } from "./serve-flags.js";

/**
 * The `iii-stream` entry: without a command it serves, with one (`get`, `watch`, ...) it is a
 * client of a running server. Each side is imported only once chosen, so that a client command
 * never loads the adapters, SQLite or the server, which would cost most of its start time.
 *
 * The command is the first positional argument, wherever it stands among the flags; telling a
 * flag's value from a positional needs every flag's type, hence both flag tables here.
 */
function commandOf(argv: string[]): string | undefined {
  const { tokens } = parseArgs({
    args: argv,
    options: { ...SERVE_FLAGS, ...CLIENT_FLAGS },
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  return tokens.find((token) => token.kind === "positional")?.value;
}

const argv = process.argv.slice(2);
const command = commandOf(argv);
if (isClientCommand(command)) {
  const { runClientCommand } = await import("./client-commands/run-command.js");
  process.exitCode = await runClientCommand(command, argv);
} else {
  // Anything else, an unknown word included, is the server's to refuse with its usage text.
  const { serve } = await import("./serve.js");
  process.exitCode = await serve(argv);
}
