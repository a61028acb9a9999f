import { CLIENT_COMMANDS, type ClientCommandName, type ClientFlag } from "./command-line.js";
import type { CommandSpec } from "./command.js";
import { EXIT_CODES_HELP } from "./exit-codes.js";

/** Where a client command connects when neither --url nor III_STREAM_URL says: the server `iii-stream` starts by default. */
export const DEFAULT_URL = "http://127.0.0.1:3112";

const FLAG_HELP: Record<ClientFlag, string> = {
  url: `  --url URL          the server (default $III_STREAM_URL, else ${DEFAULT_URL})`,
  "api-key": `  --api-key KEY      the API key, sent as a bearer token (default
                     $III_STREAM_API_KEY; needed when the server has api_keys)`,
  "if-revision": `  --if-revision N    write only while the item is at revision N (0: missing)`,
  item: `  --item ID          also deliver to the subscribers of item ID`,
  "from-offset": `  --from-offset N    resume after group offset N: print only the changes after
                     it (when the server's history still holds them; otherwise
                     a reset line and the whole state)`,
  output: `  -o, --output FMT   json (one JSON value per line) or table (aligned columns);
                     default table on a terminal, json otherwise`,
  help: `  -h, --help         show this help`,
};

/** The --help of one command: usage, what it does, its flags and the exit codes. */
export function commandHelp(name: ClientCommandName, spec: CommandSpec): string {
  const flags: ClientFlag[] = ["url", "api-key", ...spec.flags, "help"];
  return `Usage: iii-stream ${name}${spec.args.map((arg) => ` ${arg}`).join("")} [flags]

${capitalised(CLIENT_COMMANDS[name])}.

${spec.about}

Flags (anywhere on the line; a value starting with - goes after --):
${flags.map((flag) => FLAG_HELP[flag]).join("\n")}

${EXIT_CODES_HELP}
`;
}

const capitalised = (text: string) => text[0].toUpperCase() + text.slice(1);
