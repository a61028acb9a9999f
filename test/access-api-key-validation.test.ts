import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createStreamServer, ErrorCode, StreamError } from "../src/index.js";
import { runCli } from "./support/process.js";

/*
 * A key that can never be presented (whitespace splits the Authorization header, a
 * control character cannot travel in one) or that is short enough to guess must stop
 * the start, by its position: the message never shows the key.
 */

const GOOD = "k3y-0123456789abcdef";

const BAD: Array<[string, string, RegExp]> = [
  ["short", "tiny-key", /at least 16/],
  ["with a space", "abcdefgh ijklmnopq", /whitespace/],
  ["with a tab", "abcdefgh\tijklmnopq", /whitespace/],
  ["ending in a newline", "abcdefghijklmnopq\n", /whitespace/],
  ["with a no-break space", "abcdefgh\u00a0ijklmnopq", /whitespace/],
  ["with a control character", "abcdefgh\u0001ijklmnopq", /control/],
  ["with DEL", "abcdefgh\u007fijklmnopq", /control/],
  ["beyond ASCII", "abcdefghéijklmnopq", /ASCII/],
];

function startError(apiKeys: string[]): unknown {
  try {
    createStreamServer({ port: 0, apiKeys });
  } catch (error) {
    return error;
  }
  return undefined;
}

describe("createStreamServer refuses an API key that cannot work", () => {
  it.each(BAD)("%s, naming its position and never the key", (_, key, reason) => {
    const error = startError([GOOD, key]);
    expect(error).toBeInstanceOf(StreamError);
    expect(error).toMatchObject({ code: ErrorCode.InvalidArgument });
    const message = (error as Error).message;
    expect(message).toContain("apiKeys[1]");
    expect(message).toMatch(reason);
    expect(message).not.toContain(key.trim());
  });

  it("accepts keys of 16 printable ASCII characters or more, and none", async () => {
    for (const keys of [[GOOD], ["0123456789abcdef"], ["A-Za-z0-9._~+/=!"], []]) {
      const server = createStreamServer({ port: 0, apiKeys: keys });
      await server.start();
      await server.stop();
    }
  });
});

/** The exit code, or "still running" (then killed) if the process did not stop by itself within 15 s. */
async function exitOf(run: ReturnType<typeof runCli>): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => {
      run.child.kill("SIGKILL");
      resolve("still running");
    }, 15_000);
  });
  const code = await Promise.race([run.exited, late]);
  clearTimeout(timer);
  return code;
}

describe("the command line refuses such a key and exits 2", () => {
  it("in api_keys of the config file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "iii-stream-keys-"));
    const config = join(dir, "config.yaml");
    writeFileSync(config, JSON.stringify({ api_keys: [GOOD, "has a space in it!"] }));
    const run = runCli(["--adapter", "memory", "--port", "0", "--config", config]);
    expect(await exitOf(run)).toBe(2);
    expect(run.output()).toMatch(/api_keys\.1: .*whitespace/);
    expect(run.output()).not.toContain("has a space");
  });

  it("in III_STREAM_API_KEYS", async () => {
    const run = runCli(["--adapter", "memory", "--port", "0"], { III_STREAM_API_KEYS: `${GOOD},tiny-key` });
    expect(await exitOf(run)).toBe(2);
    expect(run.output()).toMatch(/III_STREAM_API_KEYS: key 2 .*at least 16/);
    expect(run.output()).not.toContain("tiny-key");
  });
});
