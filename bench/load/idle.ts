/**
 * Idle load: subscribers that join one group and then receive nothing, added up to each
 * checkpoint; at each, once the server has settled, its resident memory is read from
 * /proc. Run by the suite (bench/suite/scenarios/idle.ts).
 */
import { median } from "../suite/stats.js";
import { rssBytes } from "../suite/proc-stats.js";
import type { IdleJob, IdleResult } from "./jobs.js";
import { finish, readJob, sleep } from "./load-io.js";
import { joinSubscribers } from "./subscribers.js";
import { TRANSPORTS } from "./transports/transports.js";

/** Readings per checkpoint: the median steps over a garbage collection that happens to run. */
const READINGS = 5;
const READING_GAP_MS = 200;

const job = readJob<IdleJob>();
const transport = TRANSPORTS[job.transport];
const pid = job.target.pids[0];
let lost = 0;

async function settledRss(): Promise<number> {
  await sleep(job.settleMs);
  const readings: number[] = [];
  for (let r = 0; r < READINGS; r++) {
    readings.push(rssBytes(pid) ?? NaN);
    await sleep(READING_GAP_MS);
  }
  return median(readings);
}

const baselineRssBytes = await settledRss();
const points: IdleResult["points"] = [];
const subscribers = [];
let joinFailures = 0;
let joinMs = 0;
for (const checkpoint of job.checkpoints) {
  const joined = await joinSubscribers(
    transport,
    job.target.urls,
    checkpoint - subscribers.length,
    () => job.groupId,
    { onChange: () => undefined, onLost: () => void lost++ },
    job.joinTimeoutMs,
    subscribers.length,
  );
  subscribers.push(...joined.subscribers);
  joinFailures += joined.failures;
  joinMs += joined.ms;
  points.push({ subscribers: subscribers.length - joinFailures, rssBytes: await settledRss() });
}
const result: IdleResult = { transport: job.transport, baselineRssBytes, points, joinFailures, lost, joinMs };
for (const subscriber of subscribers) subscriber.close();
await finish(result);
