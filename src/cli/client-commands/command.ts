import type { ClientFlag } from "./command-line.js";
import type { ExitCode } from "./exit-codes.js";
import type { OutputFormat } from "./output.js";
import type { StreamClient } from "../../client/node.js";

/** What a client command is handed once its command line has been checked. */
export interface CommandContext {
  /** The positional arguments after the command's name, as many as it declares. */
  args: string[];
  /** `--if-revision`, `--from-offset` (checked whole numbers) and `--item`, when given. */
  ifRevision?: number;
  fromOffset?: number;
  item?: string;
  format: OutputFormat;
  api: StreamClient;
}

/** One client command: its arguments, the flags it takes beyond --url, --api-key and --help, and what it does. */
export interface CommandSpec {
  /** Positional names as the usage line shows them; a last one in brackets is optional. */
  args: readonly string[];
  flags: readonly ClientFlag[];
  /** The body of its --help, after the usage line. */
  about: string;
  run(context: CommandContext): Promise<ExitCode>;
}
