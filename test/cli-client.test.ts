import { spawn, spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLIENT_COMMANDS } from "../src/cli/client-commands/command-line.js";
import { BIN, iii, jsonLines } from "./support/cli-client.js";
import { startServer, type RunningServer } from "./support/server.js";
import { freePort } from "./support/shell.js";

let running: RunningServer;
let url: string;
beforeAll(async () => {
  running = await startServer();
  url = running.url;
});
afterAll(() => running?.stop());

/** A client command against the test server. */
const cli = (args: string[], input?: string) => iii(["--url", url, ...args], { input });

describe("client commands: reading and writing items", () => {
  it("set, get and list print JSON lines when the output is not a terminal", async () => {
    const set = await cli(["set", "shop", "carts", "c1", '{"total":3}']);
    expect(set).toMatchObject({ code: 0, stderr: "" });
    expect(jsonLines(set.stdout)).toEqual([{ revision: 1, offset: 1, newValue: { total: 3 } }]);

    const again = await cli(["set", "shop", "carts", "c1", '{"total":4}']);
    expect(jsonLines(again.stdout)).toEqual([{ revision: 2, offset: 2, oldValue: { total: 3 }, newValue: { total: 4 } }]);
    await cli(["set", "shop", "carts", "c0", '"second"']);

    const get = await cli(["get", "shop", "carts", "c1"]);
    expect(get.code).toBe(0);
    expect(jsonLines(get.stdout)).toEqual([{ itemId: "c1", data: { total: 4 }, revision: 2, updatedAtMs: expect.any(Number) }]);

    // Insertion order: the overwritten c1 keeps its place before c0.
    const list = await cli(["list", "shop", "carts"]);
    expect(list.code).toBe(0);
    expect(jsonLines(list.stdout).map((item) => (item as { itemId: string }).itemId)).toEqual(["c1", "c0"]);
  });

  it("takes a JSON value from standard input for -", async () => {
    const value = { text: "it's \"quoted\"", list: [1, 2, { deep: null }] };
    const set = await cli(["set", "stdin", "g", "a", "-"], JSON.stringify(value));
    expect(set.code).toBe(0);
    expect(jsonLines((await cli(["get", "stdin", "g", "a"])).stdout)).toMatchObject([{ data: value }]);

    const update = await cli(["update", "stdin", "g", "a", "-"], '[{"type":"set","path":["text"],"value":"plain"}]');
    expect(update.code).toBe(0);
    expect(jsonLines(update.stdout)).toMatchObject([{ revision: 2, newValue: { ...value, text: "plain" } }]);

    const empty = await cli(["set", "stdin", "g", "b", "-"], "");
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain("standard input");
    const two = await cli(["update", "stdin", "-", "a", "-"], "[]");
    expect(two.code).toBe(2);
    expect(two.stderr).toContain("only one argument");
  });

  it("--output table aligns columns; --output json forces JSON; anything else is a usage error", async () => {
    await cli(["set", "tables", "g", "a-long-item-name", '{"n":1}']);
    await cli(["set", "tables", "g", "b", "[true]"]);
    const table = await cli(["list", "tables", "g", "--output", "table"]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^ITEM +REVISION +UPDATED +DATA$/);
    expect(lines[1]).toMatch(/^a-long-item-name +1 +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +\{"n":1\}$/);
    expect(lines[2]).toMatch(/^b +1 +\S+ +\[true\]$/);
    for (const column of ["REVISION", "UPDATED", "DATA"]) {
      const at = lines[0].indexOf(column);
      // Every row's cell starts where its header does.
      for (const line of lines.slice(1)) expect(line[at - 1]).toBe(" ");
      for (const line of lines.slice(1)) expect(line[at]).not.toBe(" ");
    }

    const json = await cli(["get", "tables", "g", "b", "-o", "json"]);
    expect(jsonLines(json.stdout)).toMatchObject([{ itemId: "b", data: [true] }]);

    const bad = await cli(["list", "tables", "g", "--output", "yaml"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--output takes json or table");
    expect(bad.stdout).toBe("");
  });

  it("prints a table by default when standard output is a terminal", async (context) => {
    if (spawnSync("script", ["--version"]).status !== 0) context.skip();
    await cli(["set", "tty", "g", "a", "1"]);
    // script(1) runs the command on a pseudo-terminal, as a person's shell would.
    // Not spawnSync: the server runs in this process and must go on answering.
    const script = spawn("script", ["-qec", `${process.execPath} ${BIN} list tty g --url ${url}`, "/dev/null"], { stdio: ["ignore", "pipe", "inherit"] });
    let stdout = "";
    script.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    expect(await new Promise((resolve) => script.once("close", resolve))).toBe(0);
    const result = { stdout };
    expect(result.stdout).toMatch(/ITEM +REVISION +UPDATED +DATA/);
    expect(result.stdout).not.toContain("{");
  });

  it("update applies operations; a skipped one is named on stderr and exits 1 with the rest applied", async () => {
    await cli(["set", "ops", "g", "a", '{"n":1,"s":"x"}']);
    const ok = await cli(["update", "ops", "g", "a", '[{"type":"increment","path":["n"],"by":2},{"type":"merge","value":{"m":true}}]']);
    expect(ok.code).toBe(0);
    expect(jsonLines(ok.stdout)).toMatchObject([{ revision: 2, newValue: { n: 3, s: "x", m: true }, errors: [] }]);

    const partly = await cli(["update", "ops", "g", "a", '[{"type":"increment","path":["s"],"by":1},{"type":"remove","path":["m"]}]']);
    expect(partly.code).toBe(1);
    expect(partly.stderr).toContain("operation 0 skipped: increment.not_number");
    expect(jsonLines((await cli(["get", "ops", "g", "a"])).stdout)).toMatchObject([{ data: { n: 3, s: "x" }, revision: 3 }]);
  });

  it("update refuses OPS_JSON that is not an array of operations, changing nothing", async () => {
    await cli(["set", "ops-bad", "g", "a", "{}"]);
    for (const [ops, says] of [
      ['{"type":"set","value":1}', "must be a JSON array"],
      ['[{"type":"sett","value":1}]', "operation 0 needs a type"],
      ['[{"set":{"path":[],"value":1}}]', "operation 0 needs a type"],
      ['[{"type":"remove","path":["a"]},{"type":"set","paht":["a"],"value":1}]', 'operation 1 (set) has no field "paht"'],
      ['[{"type":"increment","path":["n"],"by":1.5}]', "ops[0]: increment takes an integer by"],
      ['[{"type":"merge","value":[1]}]', "ops[0]: merge takes an object value"],
      ["[", "not JSON"],
    ]) {
      const result = await cli(["update", "ops-bad", "g", "a", ops]);
      expect(result.code, ops).toBe(2);
      expect(result.stderr, ops).toContain(says);
    }
    expect(jsonLines((await cli(["get", "ops-bad", "g", "a"])).stdout)).toMatchObject([{ revision: 1, data: {} }]);
  });

  it("get of a missing item exits 3; delete says whether there was one", async () => {
    const missing = await cli(["get", "del", "g", "nope"]);
    expect(missing).toMatchObject({ code: 3, stdout: "" });
    expect(missing.stderr).toContain('no item "nope"');

    await cli(["set", "del", "g", "a", "1"]);
    const deleted = await cli(["delete", "del", "g", "a"]);
    expect(deleted.code).toBe(0);
    expect(jsonLines(deleted.stdout)).toEqual([{ deleted: true, offset: 2, oldValue: 1 }]);
    expect((await cli(["get", "del", "g", "a"])).code).toBe(3);

    const again = await cli(["delete", "del", "g", "a", "-o", "table"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^DELETED +OFFSET\nfalse +2\n$/);
  });

  it("--if-revision makes writes conditional: a mismatch exits 4 and writes nothing", async () => {
    const create = await cli(["set", "cas", "g", "a", '"one"', "--if-revision", "0"]);
    expect(create.code).toBe(0);
    const exists = await cli(["set", "cas", "g", "a", '"two"', "--if-revision", "0"]);
    expect(exists.code).toBe(4);
    expect(exists.stderr).toContain("failed_precondition");
    expect((await cli(["--if-revision", "1", "set", "cas", "g", "a", '"two"'])).code).toBe(0);
    expect((await cli(["update", "cas", "g", "a", '[{"type":"set","value":"three"}]', "--if-revision", "1"])).code).toBe(4);
    expect((await cli(["delete", "cas", "g", "a", "--if-revision", "7"])).code).toBe(4);
    expect(jsonLines((await cli(["get", "cas", "g", "a"])).stdout)).toMatchObject([{ data: "two", revision: 2 }]);
    expect((await cli(["delete", "cas", "g", "a", "--if-revision", "2"])).code).toBe(0);
  });

  it("groups and streams list what exists, in JSON and as tables", async () => {
    await cli(["set", "catalog", "b-group", "x", "1"]);
    await cli(["set", "catalog", "a-group", "x", "1"]);
    const groups = await cli(["groups", "catalog"]);
    expect(groups.code).toBe(0);
    expect(jsonLines(groups.stdout)).toEqual(["a-group", "b-group"]);
    expect((await cli(["groups", "catalog", "-o", "table"])).stdout).toBe("GROUP\na-group\nb-group\n");

    const streams = await cli(["streams"]);
    expect(streams.code).toBe(0);
    expect(jsonLines(streams.stdout)).toContainEqual({ stream: "catalog", groupCount: 2, groups: ["a-group", "b-group"] });
    const table = (await cli(["streams", "-o", "table"])).stdout;
    expect(table).toMatch(/^STREAM +GROUPS\n/);
    expect(table).toMatch(/\ncatalog +2\n/);
  });

  it("send delivers an event to a watcher and prints nothing", async () => {
    const client = running.client();
    const events = client.subscribe({ streamName: "chat", groupId: "room", itemId: "m1" })[Symbol.asyncIterator]();
    expect((await events.next()).value?.message.case).toBe("snapshot");
    const send = await cli(["send", "chat", "room", "typing", "-", "--item", "m1"], '{"who":"ann"}');
    expect(send).toMatchObject({ code: 0, stdout: "", stderr: "" });
    const next = (await events.next()).value;
    expect(next?.message.case).toBe("event");
    if (next?.message.case !== "event") throw new Error("no event");
    expect(next.message.value.type).toBe("typing");
    expect(next.message.value.itemId).toBe("m1");
    await events.return?.();
  });

  it("takes flags before, between and after the arguments", async () => {
    await iii(["set", "--url", url, "anywhere", "g", "a", "1"]);
    for (const args of [
      ["--url", url, "get", "anywhere", "g", "a"],
      ["get", "anywhere", "--url", url, "g", "a", "-o", "json"],
      ["get", "anywhere", "g", "a", "--url", url],
    ]) {
      const result = await iii(args);
      expect(result.code, args.join(" ")).toBe(0);
      expect(jsonLines(result.stdout)).toMatchObject([{ itemId: "a", data: 1 }]);
    }
    const fromEnv = await iii(["get", "anywhere", "g", "a"], { env: { III_STREAM_URL: url } });
    expect(fromEnv.code).toBe(0);
    // A negative number is a value after --.
    expect((await cli(["set", "anywhere", "g", "n", "--", "-5"])).code).toBe(0);
    expect(jsonLines((await cli(["get", "anywhere", "g", "n"])).stdout)).toMatchObject([{ data: -5 }]);
  });
});

// Independent commands: run side by side, so that many process starts cost little time.
describe.concurrent("client commands: bad input and exit codes", () => {
  it.each([
    [["get", "s", "g"], "get takes STREAM GROUP ITEM"],
    [["get", "s", "g", "i", "extra"], "get takes STREAM GROUP ITEM"],
    [["streams", "extra"], "streams takes no arguments"],
    [["set", "s", "g", "i", "{oops"], "JSON is not JSON"],
    [["set", "s", "g", "i", "bare-word"], "quote strings"],
    [["get", "s", "g", "i", "--if-revision", "1"], "get does not take --if-revision"],
    [["set", "s", "g", "i", "1", "--if-revision", "-1"], "--if-revision"],
    [["set", "s", "g", "i", "1", "--if-revision=x"], "--if-revision takes a whole number"],
    [["list", "s", "g", "--from-offset", "2"], "list does not take --from-offset"],
    [["get", "s", "g", "i", "--colour"], "--colour"],
    [["get", "s", "g", "i", "--url", "localhost:3112"], "--url"],
    [["get", "s", "g", "i", "--url", "ftp://127.0.0.1"], "--url must be http"],
  ])("%j is a usage error (exit 2) that says what is wrong", async (args, says) => {
    const result = await cli(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(says);
    expect(result.stderr).toContain("--help");
    expect(result.stdout).toBe("");
  });

  it("input the server refuses as invalid exits 2 and changes nothing", async () => {
    const longName = "n".repeat(300);
    const result = await cli(["set", "s", longName, "i", "1"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("invalid_argument");
    expect(jsonLines((await cli(["groups", "s"])).stdout)).toEqual([]);
  });

  it("no server at the URL exits 5 and names the URL", async () => {
    // A port that was free a moment ago: nothing listens there.
    const port = await freePort();
    const result = await iii(["get", "s", "g", "i", "--url", `http://127.0.0.1:${port}`]);
    expect(result.code).toBe(5);
    expect(result.stderr).toContain("unavailable");
    expect(result.stderr).toContain(`http://127.0.0.1:${port}`);
  });

  it("an unknown word is still the server's usage error", async () => {
    const result = await iii(["serve-please"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("serve-please");
    expect(result.stderr).toContain("Usage:");
  });
});

describe("client commands: API keys", () => {
  const key = "cli-key-0123456789abcdef";
  let keyed: RunningServer;
  beforeAll(async () => {
    keyed = await startServer({ apiKeys: [key] });
  });
  afterAll(() => keyed?.stop());

  it("without a key or with a wrong one exits 6; --api-key or III_STREAM_API_KEY lets it in", async () => {
    const none = await iii(["set", "keyed", "g", "a", "1", "--url", keyed.url]);
    expect(none.code).toBe(6);
    expect(none.stderr).toContain("unauthenticated");
    expect(none.stderr).toContain("--api-key");
    const wrong = await iii(["set", "keyed", "g", "a", "1", "--url", keyed.url, "--api-key", "not-the-key-0123456789"]);
    expect(wrong.code).toBe(6);

    expect((await iii(["set", "keyed", "g", "a", "1", "--url", keyed.url, "--api-key", key])).code).toBe(0);
    const fromEnv = await iii(["get", "keyed", "g", "a", "--url", keyed.url], { env: { III_STREAM_API_KEY: key } });
    expect(fromEnv.code).toBe(0);
    expect(jsonLines(fromEnv.stdout)).toMatchObject([{ data: 1, revision: 1 }]);
  });
});

describe.concurrent("client commands: help and start-up", () => {
  it.each(Object.keys(CLIENT_COMMANDS))("%s --help shows its usage, flags and exit codes", async (name) => {
    const result = await iii([name, "--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Usage: iii-stream ${name}`);
    expect(result.stdout).toContain("--url URL");
    expect(result.stdout).toContain("Exit codes:");
    expect(result.stdout).toContain("5  unavailable");
  });

  it("the server's --help lists the client commands", async () => {
    const result = await iii(["--help"]);
    expect(result.code).toBe(0);
    for (const name of Object.keys(CLIENT_COMMANDS)) expect(result.stdout).toMatch(new RegExp(`^  ${name} +\\S`, "m"));
  });

  it("a client command loads no server module (adapters, SQLite, Redis, the HTTP server)", async () => {
    // NODE_DEBUG=esm makes Node log every module it loads.
    const result = await iii(["get", "s", "g", "i", "--url", url], { env: { NODE_DEBUG: "esm" } });
    expect(result.code).toBe(3);
    expect(result.stderr).toContain("dist/src/cli/client-commands/run-command.js");
    expect(result.stderr).not.toMatch(/dist\/src\/(adapters|server|rpc|ws|functions)\/|better-sqlite3|ioredis|cli\/serve\.js/);
  });
});
