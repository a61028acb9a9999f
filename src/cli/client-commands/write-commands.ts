import type { CommandSpec } from "./command.js";
import { ExitCode } from "./exit-codes.js";
import { jsonArgument } from "./json-arguments.js";
import { cell, RecordPrinter } from "./output.js";
import { updateOperations } from "./update-operations.js";

const CONDITION = `With --if-revision N the write happens only while the item is at revision N
(0: only while it does not exist); otherwise nothing changes and the exit code is 4.`;

export const setCommand: CommandSpec = {
  args: ["STREAM", "GROUP", "ITEM", "JSON"],
  flags: ["if-revision", "output"],
  about: `Replaces the item's value with JSON, creating the item when it is missing, and
prints its new revision and the group offset of the change. JSON is any JSON value
('{"text":"hi"}', '"a string"', 42); - reads it from standard input.
${CONDITION}`,
  async run({ args: [stream, group, item, data], ifRevision, format, api }) {
    const reply = await api.set(stream, group, item, await jsonArgument(data, "JSON"), { ifRevision });
    const printer = new RecordPrinter(format, ["REVISION", "OFFSET"]);
    printer.add(reply, [String(reply.revision), String(reply.offset)]);
    printer.flush();
    return ExitCode.Ok;
  },
};

export const updateCommand: CommandSpec = {
  args: ["STREAM", "GROUP", "ITEM", "OPS_JSON"],
  flags: ["if-revision", "output"],
  about: `Applies OPS_JSON, a JSON array of update operations, to the item in order and
atomically, and prints the new value and revision. Each operation is one of
  {"type":"set","path":["a"],"value":1}        {"type":"merge","path":[],"value":{"b":2}}
  {"type":"increment","path":["n"],"by":1}     {"type":"decrement","path":["n"],"by":1}
  {"type":"append","path":["l"],"value":3}     {"type":"remove","path":["a"]}
where a path is a list of literal keys (a dot is no separator) and an empty or absent
one means the whole value. - reads the array from standard input. An operation that
cannot apply is skipped, named on standard error, and makes the exit code 1; the
others still apply.
${CONDITION}`,
  async run({ args: [stream, group, item, opsArgument], ifRevision, format, api }) {
    const ops = updateOperations(await jsonArgument(opsArgument, "OPS_JSON"));
    const reply = await api.update(stream, group, item, ops, { ifRevision });
    const printer = new RecordPrinter(format, ["REVISION", "OFFSET", "VALUE"]);
    printer.add(reply, [String(reply.revision), String(reply.offset), cell(reply.newValue)]);
    printer.flush();
    for (const skipped of reply.errors) process.stderr.write(`iii-stream: operation ${skipped.opIndex} skipped: ${skipped.code}: ${skipped.message}\n`);
    return reply.errors.length === 0 ? ExitCode.Ok : ExitCode.Failure;
  },
};

export const deleteCommand: CommandSpec = {
  args: ["STREAM", "GROUP", "ITEM"],
  flags: ["if-revision", "output"],
  about: `Removes the item and prints whether there was one and the group offset. Deleting
a missing item succeeds and changes nothing.
${CONDITION}`,
  async run({ args: [stream, group, item], ifRevision, format, api }) {
    const reply = await api.delete(stream, group, item, { ifRevision });
    const deleted = reply.oldValue !== undefined;
    const printer = new RecordPrinter(format, ["DELETED", "OFFSET"]);
    printer.add({ deleted, ...reply }, [String(deleted), String(reply.offset)]);
    printer.flush();
    return ExitCode.Ok;
  },
};

export const sendCommand: CommandSpec = {
  args: ["STREAM", "GROUP", "TYPE", "JSON"],
  flags: ["item"],
  about: `Delivers a transient event named TYPE with the JSON value to the group's current
subscribers; nothing is stored, and nothing is printed. With --item ID the subscribers
of that one item receive it too. - reads JSON from standard input.`,
  async run({ args: [stream, group, type, data], item, api }) {
    await api.send(stream, group, type, await jsonArgument(data, "JSON"), { itemId: item });
    return ExitCode.Ok;
  },
};
