import type { ViewStatus } from "../../client/node.js";
import type { CommandSpec } from "./command.js";
import { ExitCode } from "./exit-codes.js";
import { jsonLine } from "./output.js";
import { StatusLine } from "./status-line.js";

export const watchCommand: CommandSpec = {
  args: ["STREAM", "GROUP", "[ITEM]"],
  flags: ["from-offset"],
  about: `Prints one JSON line per item and change (NDJSON: it pipes into jq) and runs
until interrupted (SIGINT or SIGTERM, then exits 0). Lines, each with the group
offset it reflects:
  {"kind":"item","itemId","data","revision","updatedAtMs","offset"}
      the state when the watch starts: one line per item (none with --from-offset)
  {"kind":"change","type":"create|update|delete","itemId","data","revision","offset","timestampMs"}
      every change after that, in offset order; data of a delete is the removed value
  {"kind":"event","type","itemId","data","offset","timestampMs"}
      an event from send (itemId only when it was sent to an item)
  {"kind":"reset","reason","message","offset","previousOffset"}
      continuity was lost (the server no longer held every missed change): the
      item lines of the whole state at offset follow; forget what came before
When the connection drops or the server restarts, the watch reconnects (with
backoff) and resumes after the last offset it printed, so no change is printed
twice or left out. On a terminal, standard error shows whether it is live. It
ends by itself only when the server refuses it (a missing or wrong API key:
exit 6, bad names: exit 2).`,
  async run({ args: [stream, group, item], fromOffset, api }) {
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    const options = { fromOffset, signal: stop.signal };
    const view = item === undefined ? api.watchGroup(stream, group, options) : api.watchItem(stream, group, item, options);
    const status = new StatusLine();
    const where = item === undefined ? `${stream}/${group}` : `${stream}/${group}/${item}`;
    const describe = (state: ViewStatus) =>
      state === "live" ? `live: ${where} at offset ${view.offset}` : `${state}: ${where}${view.offset === undefined ? "" : ` (last offset ${view.offset})`}`;
    const print = (line: object) => status.around(() => process.stdout.write(jsonLine(line)));
    const printState = () => {
      for (const [itemId, value] of view.items) print({ kind: "item", itemId, ...value, offset: view.offset });
    };

    // Listeners run as the view applies each message, so `items` is exactly the state the
    // line describes; an async iterator would see it only later.
    let statePrinted = fromOffset !== undefined;
    view.on("reset", (reset) => {
      print({ kind: "reset", ...reset });
      printState();
    });
    view.on("change", (change) => {
      print({ kind: "change", ...change });
      status.show(describe(view.status));
    });
    view.on("event", (event) => print({ kind: "event", ...event }));
    const closed = new Promise<void>((resolve) =>
      view.on("status", (state) => {
        if (state === "live" && !statePrinted) {
          statePrinted = true;
          printState();
        }
        if (state === "closed") resolve();
        else status.show(describe(state));
      }),
    );
    status.show(describe(view.status));
    await closed;
    status.done();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    if (view.error) throw view.error;
    return ExitCode.Ok;
  },
};
