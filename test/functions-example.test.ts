import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "./support/process.js";

describe("examples/presence.ts, as the README runs it", () => {
  it("counts presence from join and leave, refuses a subscriber without a token, and writes the audit log", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "examples/presence.ts"], {
      cwd: PROJECT_ROOT,
      timeout: 30_000,
    });
    const lines = stdout.trim().split("\n");
    expect(lines[0]).toBe('online: {"count":2,"members":{"alice":true,"bob":true}}');
    expect(lines[1]).toBe("without a token: [unauthenticated] not authenticated");
    expect(lines[2]).toBe('after bob left: {"count":1,"members":{"alice":true}}');
    expect(lines[3]).toMatch(/^audit 00000001 \{"id":"m1","timestamp":\d+,"event":\{"type":"create","data":\{"from":"alice","text":"hello"\}\}\}$/);
    expect(lines).toHaveLength(4);
  });
});
