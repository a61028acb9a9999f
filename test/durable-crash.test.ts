import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runKillCycles } from "./support/kill-cycles.js";

/**
 * 20 kills keep the suite quick. For a soak, raise it, and add a relaxed sync interval
 * (a killed process must still lose nothing; only a power loss may):
 *   CRASH_CYCLES=200 CRASH_SYNC_INTERVAL_MS=1000 npx vitest run test/durable-crash.test.ts
 */
const CYCLES = Number(process.env.CRASH_CYCLES ?? 20);
const SYNC_INTERVAL_MS = process.env.CRASH_SYNC_INTERVAL_MS;
const WRITERS = 16;
const dataDir = mkdtempSync(join(tmpdir(), "iii-stream-crash-"));

afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

describe("durability under kill -9", () => {
  it(`keeps every acknowledged write, and offsets carry on, across ${CYCLES} kills at random moments`, { timeout: Math.max(120_000, CYCLES * 6000) }, async () => {
    const { acked, server } = await runKillCycles({
      dataDir,
      cycles: CYCLES,
      writers: WRITERS,
      groups: 4,
      itemsPerWriter: 3,
      // Random, so that kills land anywhere in a batch: before, during and after its commit.
      killAfterMs: { min: 20, max: 200 },
      serverArgs: SYNC_INTERVAL_MS ? ["--sync-interval-ms", SYNC_INTERVAL_MS] : [],
    });
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);
    // The kills must have hit a server that was busy writing, or the test proves nothing.
    expect(acked).toBeGreaterThan(CYCLES * WRITERS);
  });
});
