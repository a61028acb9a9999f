import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { JsonObject } from "../src/index.js";
import { runKillCycles } from "./support/kill-cycles.js";
import { eventually, startPlainFunctionServer } from "./support/function-server.js";

/**
 * A file-adapter server with an at-least-once trigger to a remote function, killed with
 * SIGKILL at random moments under 16 writers: every acknowledged change must reach the
 * function, exactly once per delivery id, in offset order per item.
 */
const CYCLES = Number(process.env.CRASH_CYCLES ?? 20);
const WRITERS = 16;
const dataDir = mkdtempSync(join(tmpdir(), "iii-stream-trigger-crash-"));

afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

interface Delivery {
  deliveryId: string;
  groupId: string;
  itemId: string;
  offset: number;
}

describe("at-least-once triggers under kill -9", () => {
  it(`deliver every acknowledged change, in offset order per item, across ${CYCLES} kills`, { timeout: Math.max(120_000, CYCLES * 6000) }, async () => {
    const deliveries: Delivery[] = [];
    const remote = await startPlainFunctionServer((_id, payload) => {
      const p = payload as JsonObject;
      deliveries.push({ deliveryId: p.delivery_id as string, groupId: p.groupId as string, itemId: p.id as string, offset: p.offset as number });
      return null;
    });
    try {
      const config = join(dataDir, "config.json");
      writeFileSync(
        config,
        JSON.stringify({
          functions: [{ function_id: "sink", url: remote.url }],
          triggers: [
            {
              trigger_id: "crash-sink",
              type: "stream",
              function_id: "sink",
              config: { stream_name: "crash", delivery: "at_least_once", retry_initial_ms: 20, retry_max_ms: 100 },
            },
          ],
        }),
      );
      const acked: Array<{ groupId: string; itemId: string; offset: number }> = [];
      const { server } = await runKillCycles({
        dataDir: join(dataDir, "store"),
        cycles: CYCLES,
        writers: WRITERS,
        groups: 4,
        itemsPerWriter: 3,
        killAfterMs: { min: 20, max: 200 },
        serverArgs: ["--config", config],
        onAck: (groupId, itemId, offset) => acked.push({ groupId, itemId, offset }),
      });
      try {
        expect(acked.length).toBeGreaterThan(CYCLES * WRITERS);
        const delivered = (d: { groupId: string; offset: number }) => `${d.groupId}@${d.offset}`;
        await eventually(() => {
          const seen = new Set(deliveries.map(delivered));
          const missing = acked.filter((a) => !seen.has(delivered(a)));
          expect(missing.slice(0, 5)).toEqual([]);
        }, 30_000);
        // Deduplicated by delivery id: one call per change, each with the right item.
        const first = new Map<string, Delivery>();
        for (const d of deliveries) if (!first.has(d.deliveryId)) first.set(d.deliveryId, d);
        const byChange = new Map<string, string>();
        for (const d of first.values()) {
          expect(d.deliveryId).toBe(`crash-sink/crash/${d.groupId}/${d.offset}`);
          expect(byChange.has(delivered(d))).toBe(false);
          byChange.set(delivered(d), d.itemId);
        }
        for (const a of acked) expect(byChange.get(delivered(a))).toBe(a.itemId);
        // Per item, first deliveries come in offset order.
        const lastOffset = new Map<string, number>();
        for (const d of first.values()) {
          const key = `${d.groupId}/${d.itemId}`;
          expect(d.offset, `${key}: offset ${d.offset} after ${lastOffset.get(key)}`).toBeGreaterThan(lastOffset.get(key) ?? 0);
          lastOffset.set(key, d.offset);
        }
      } finally {
        server.child.kill("SIGTERM");
        await server.exited;
      }
    } finally {
      await remote.close();
    }
  });
});
