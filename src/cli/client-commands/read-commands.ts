import type { CommandSpec } from "./command.js";
import { ExitCode } from "./exit-codes.js";
import { cell, RecordPrinter, timeCell } from "./output.js";
import type { StoredItem } from "../../client/node.js";

const ITEM_COLUMNS = ["ITEM", "REVISION", "UPDATED", "DATA"];
const itemCells = (item: StoredItem) => [item.itemId, String(item.revision), timeCell(item.updatedAtMs), cell(item.data)];
const ITEM_JSON = `In JSON each item is {"itemId", "data", "revision", "updatedAtMs"}.`;

export const getCommand: CommandSpec = {
  args: ["STREAM", "GROUP", "ITEM"],
  flags: ["output"],
  about: `Prints the item, or says on standard error that there is none and exits 3.
${ITEM_JSON}`,
  async run({ args: [stream, group, id], format, api }) {
    const item = await api.get(stream, group, id);
    if (item === undefined) {
      process.stderr.write(`iii-stream: no item ${JSON.stringify(id)} in group ${JSON.stringify(group)} of stream ${JSON.stringify(stream)}\n`);
      return ExitCode.NotFound;
    }
    const printer = new RecordPrinter(format, ITEM_COLUMNS);
    printer.add(item, itemCells(item));
    printer.flush();
    return ExitCode.Ok;
  },
};

export const listCommand: CommandSpec = {
  args: ["STREAM", "GROUP"],
  flags: ["output"],
  about: `Prints every item of the group in insertion order, one per line, reading it page
by page; an empty or unknown group prints nothing (a table, its header).
${ITEM_JSON}`,
  async run({ args: [stream, group], format, api }) {
    const printer = new RecordPrinter(format, ITEM_COLUMNS);
    for await (const page of api.list(stream, group)) {
      for (const item of page) printer.add(item, itemCells(item));
      printer.flush();
    }
    printer.flush();
    return ExitCode.Ok;
  },
};

export const groupsCommand: CommandSpec = {
  args: ["STREAM"],
  flags: ["output"],
  about: `Prints the stream's non-empty groups, sorted, one per line (in JSON, each a
JSON string).`,
  async run({ args: [stream], format, api }) {
    const printer = new RecordPrinter(format, ["GROUP"]);
    for await (const page of api.listGroups(stream)) {
      for (const group of page) printer.add(group, [group]);
      printer.flush();
    }
    printer.flush();
    return ExitCode.Ok;
  },
};

export const streamsCommand: CommandSpec = {
  args: [],
  flags: ["output"],
  about: `Prints every stream, sorted, with how many non-empty groups it has. In JSON each
is {"stream", "groupCount", "groups"}, where groups are its first ones (up to 100;
iii-stream groups STREAM lists them all).`,
  async run({ format, api }) {
    const printer = new RecordPrinter(format, ["STREAM", "GROUPS"]);
    for await (const page of api.listAll()) {
      for (const info of page) printer.add({ stream: info.streamName, groupCount: info.groupCount, groups: info.groups }, [info.streamName, String(info.groupCount)]);
      printer.flush();
    }
    printer.flush();
    return ExitCode.Ok;
  },
};
