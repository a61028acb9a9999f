import type { CommandSpec } from "./command.js";
import { ExitCode } from "./exit-codes.js";

export const watchCommand: CommandSpec = {
  args: ["STREAM", "GROUP", "[ITEM]"],
  flags: ["from-offset"],
  about: `TODO`,
  async run() {
    return ExitCode.Failure;
  },
};
