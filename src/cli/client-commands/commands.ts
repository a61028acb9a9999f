import type { ClientCommandName } from "./command-line.js";
import type { CommandSpec } from "./command.js";
import { getCommand, groupsCommand, listCommand, streamsCommand } from "./read-commands.js";
import { watchCommand } from "./watch-command.js";
import { deleteCommand, sendCommand, setCommand, updateCommand } from "./write-commands.js";

/** Every client command by name. */
export const COMMANDS: Record<ClientCommandName, CommandSpec> = {
  set: setCommand,
  get: getCommand,
  update: updateCommand,
  delete: deleteCommand,
  send: sendCommand,
  list: listCommand,
  groups: groupsCommand,
  streams: streamsCommand,
  watch: watchCommand,
};
