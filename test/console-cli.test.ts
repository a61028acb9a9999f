/**
 * The console from the command line: the built binary serves it by default (the files
 * come from dist/console, as after `npm install`), `--console false` and the config key
 * `console: false` turn it off, and a value other than true or false is refused.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli, spawnServer, type ServerProcess } from "./support/process.js";

const running: ServerProcess[] = [];
afterAll(() => {
  for (const server of running) server.child.kill("SIGKILL");
});

async function start(args: string[]): Promise<ServerProcess> {
  const server = await spawnServer(["--adapter", "memory", "--port", "0", ...args]);
  running.push(server);
  return server;
}

describe("the console on the command line", () => {
  it("is served by default, from the built files", async () => {
    const server = await start([]);
    const page = await fetch(`${server.url}/console/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<title>iii-stream console</title>");
  });

  it("is off with --console false", async () => {
    const server = await start(["--console", "false"]);
    expect((await fetch(`${server.url}/console/`)).status).toBe(404);
  });

  it("is off with console: false in the config file", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "iii-stream-console-cli-")), "config.yaml");
    writeFileSync(file, "console: false\n");
    const server = await start(["--config", file]);
    expect((await fetch(`${server.url}/console/`)).status).toBe(404);
  });

  it("refuses --console with a value other than true or false, naming the flag", async () => {
    const run = runCli(["--adapter", "memory", "--port", "0", "--console", "yes"]);
    expect(await run.exited).toBe(2);
    expect(run.output()).toContain('--console must be true or false, got "yes"');
  });
});
