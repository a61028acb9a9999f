import type { ParseArgsConfig } from "node:util";

/**
 * The client commands of `iii-stream` and their one-line summaries, for the entry (which
 * must recognise a command without loading any client or server code) and the help texts.
 */
export const CLIENT_COMMANDS = {
  set: "replace an item's value (creating it when missing)",
  get: "print one item",
  update: "apply update operations to an item atomically",
  delete: "remove an item",
  send: "send a transient event to a group's subscribers",
  list: "print a group's items, in insertion order",
  groups: "print a stream's non-empty groups",
  streams: "print the streams and how many groups each has",
  watch: "print every change of a group (or of one item) as it happens",
} as const;

export type ClientCommandName = keyof typeof CLIENT_COMMANDS;

export function isClientCommand(name: string | undefined): name is ClientCommandName {
  return name !== undefined && Object.hasOwn(CLIENT_COMMANDS, name);
}

/** Every flag of the client commands; each command says which of them it takes. */
export const CLIENT_FLAGS = {
  url: { type: "string" },
  "api-key": { type: "string" },
  "from-offset": { type: "string" },
  "if-revision": { type: "string" },
  item: { type: "string" },
  output: { type: "string", short: "o" },
  help: { type: "boolean", short: "h" },
} as const satisfies NonNullable<ParseArgsConfig["options"]>;

export type ClientFlag = keyof typeof CLIENT_FLAGS;
