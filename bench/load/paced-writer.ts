/**
 * The many-groups writer, in a process of its own: it paces writes and times their
 * acknowledgements without waiting behind the thousands of subscribers' reads, which
 * would otherwise add their queueing to every ack it measures. Forked by
 * bench/load/many-groups.ts; one `{ ms }` message runs one phase of writes and is
 * answered with a PacedPhase once every write of the phase settled.
 */
import { fileURLToPath } from "node:url";
import { epochNow } from "./counting-connection.js";
import { sleep } from "./load-io.js";
import { TRANSPORTS, type TransportName } from "./transports/transports.js";

export interface PacedWriterJob {
  transport: TransportName;
  url: string;
  /** Writes per second over all groups; write i goes to group i mod groups. */
  rate: number;
  groups: number;
  groupPrefix: string;
}

export interface PacedPhase {
  /** Index of the phase's first write; its writes are firstIndex, firstIndex + 1, ... */
  firstIndex: number;
  /** When each write was sent, on the shared epoch clock (epochNow), comparable across processes. */
  sentAt: number[];
  /** Milliseconds from each acknowledged write's call to its acknowledgement. */
  ackMs: number[];
  failed: number;
  /** CPU seconds this process used over the phase. */
  cpuSeconds: number;
}

export const groupIdOf = (prefix: string, groups: number, i: number) => `${prefix}-${i % groups}`;

// Run as the forked writer; imported for its types and helpers, it does nothing.
if (process.send && process.argv[1] === fileURLToPath(import.meta.url)) {
  const job = JSON.parse(process.argv[2]) as PacedWriterJob;
  const writer = await TRANSPORTS[job.transport].openWriter(job.url);
  let nextWrite = 0;
  process.on("message", async ({ ms }: { ms: number }) => {
    const cpuBefore = process.cpuUsage();
    const firstIndex = nextWrite;
    const sentAt: number[] = [];
    const ackMs: number[] = [];
    let failed = 0;
    const acks: Promise<void>[] = [];
    const started = performance.now();
    const writes = Math.round((job.rate * ms) / 1000);
    for (let k = 0; k < writes; k++) {
      const wait = started + (k * 1000) / job.rate - performance.now();
      if (wait > 1) await sleep(wait);
      const i = nextWrite++;
      const sent = epochNow();
      sentAt.push(sent);
      acks.push(
        writer.write(groupIdOf(job.groupPrefix, job.groups, i), i).then(
          () => void ackMs.push(epochNow() - sent),
          () => void failed++,
        ),
      );
    }
    await Promise.all(acks);
    const cpu = process.cpuUsage(cpuBefore);
    const phase: PacedPhase = { firstIndex, sentAt, ackMs, failed, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
    process.send!(phase);
  });
  process.send({ ready: true });
}
