/**
 * The crash test of `test/durable-crash.test.ts`, for longer: kill -9 the real server
 * at random moments while 16 writers are mid-flight, restart it, and check that every
 * acknowledged write is there with exactly its value and revision and that offsets
 * carry on gapless. Exits non-zero at the first violation.
 *
 *   npx tsx bench/crash-soak.ts [--cycles 200] [--writers 16] [--max-kill-ms 500] [--sync-interval-ms N]
 *
 * With --sync-interval-ms the server runs in relaxed mode: a killed process must still
 * lose nothing (only a power loss or OS crash may).
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runKillCycles } from "../test/support/kill-cycles.js";

const args = parseArgs({
  options: {
    cycles: { type: "string", default: "200" },
    writers: { type: "string", default: "16" },
    "max-kill-ms": { type: "string", default: "500" },
    "sync-interval-ms": { type: "string" },
  },
}).values;
const cycles = Number(args.cycles);
const dataDir = mkdtempSync(join(os.tmpdir(), "iii-stream-crash-soak-"));
const started = performance.now();
let exitCode = 0;
try {
  const { acked, server } = await runKillCycles({
    dataDir,
    cycles,
    writers: Number(args.writers),
    groups: 4,
    itemsPerWriter: 3,
    killAfterMs: { min: 10, max: Number(args["max-kill-ms"]) },
    serverArgs: args["sync-interval-ms"] ? ["--sync-interval-ms", args["sync-interval-ms"]] : [],
    onCycle: (cycle, cycleAcked) => {
      if ((cycle + 1) % 10 === 0) console.log(`cycle ${cycle + 1}/${cycles}: ${cycleAcked} writes acknowledged before the kill`);
    },
  });
  server.child.kill("SIGTERM");
  await server.exited;
  const seconds = (performance.now() - started) / 1000;
  console.log(`OK: ${cycles} kills, ${acked} acknowledged writes, none lost, offsets gapless (${seconds.toFixed(0)} s)`);
} catch (error) {
  console.error(`FAILED: ${error instanceof Error ? error.message : String(error)}`);
  exitCode = 1;
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
process.exitCode = exitCode;
