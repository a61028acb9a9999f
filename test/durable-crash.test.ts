import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runKillCycles } from "./support/kill-cycles.js";

const CYCLES = 20;
const WRITERS = 16;
const dataDir = mkdtempSync(join(tmpdir(), "iii-stream-crash-"));

afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

describe("durability under kill -9", () => {
  it(`keeps every acknowledged write, and offsets carry on, across ${CYCLES} kills at random moments`, { timeout: 120_000 }, async () => {
    const { acked, server } = await runKillCycles({
      dataDir,
      cycles: CYCLES,
      writers: WRITERS,
      groups: 4,
      itemsPerWriter: 3,
      // Random, so that kills land anywhere in a batch: before, during and after its commit.
      killAfterMs: { min: 20, max: 200 },
    });
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);
    // The kills must have hit a server that was busy writing, or the test proves nothing.
    expect(acked).toBeGreaterThan(CYCLES * WRITERS);
  });
});
