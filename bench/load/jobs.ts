/**
 * The jobs the suite hands to load generators and the figures they hand back. Types
 * only: the suite and the load processes share them without sharing a process.
 */
import type { LoadJob } from "./load-io.js";
import type { SlowConsumersJob, SlowConsumersResult, SnapshotJoinJob, SnapshotJoinResult } from "./memory-jobs.js";
import type { SaturationProbeJob, SaturationProbeResult, SaturationSubscribersJob, SaturationSubscribersResult } from "./saturation-jobs.js";
import type { TransportName } from "./transports/transports.js";

/** One system under test as a load sees it: its instances' URLs and process ids. */
export interface Target {
  system: string;
  urls: string[];
  pids: number[];
}

export type UnaryProtocol = "connect-binary-h2" | "connect-json-h1" | "grpc";

export interface UnaryCase {
  target: Target;
  protocol: UnaryProtocol;
  concurrency: number;
}

export interface UnaryJob extends LoadJob {
  /** Measured one after the other, in this order (the suite interleaves the systems). */
  cases: UnaryCase[];
  warmupMs: number;
  measureMs: number;
}

export interface UnaryFigures {
  system: string;
  protocol: UnaryProtocol;
  concurrency: number;
  callsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Server CPU time per call over the measured window (all instances). */
  serverCpuMicrosPerCall: number;
  /** Cores the server used over the window (1 = one core busy all the time). */
  serverCores: number;
  loadCores: number;
  errors: number;
}

export interface FanoutJob extends LoadJob {
  transport: TransportName;
  target: Target;
  subscribers: number;
  groupId: string;
  /** Writes per second of each step, ascending; the first is the reference step every system runs. */
  rates: number[];
  stepMs: number;
  /** Length of the first (reference) step, whose CPU per delivery every system is compared by. */
  referenceStepMs: number;
  warmupMs: number;
  /** Writes to an empty group before the warm-up step (see warmWritePath in fanout.ts). */
  writePathWarmupWrites: number;
  /** How long after a step's last write its deliveries may still arrive. */
  drainMs: number;
  /** A step is sustained when every delivery arrived and p99 stayed at or under this. */
  p99LimitMs: number;
  joinTimeoutMs: number;
}

export interface FanoutStep {
  writesPerSecond: number;
  offeredDeliveriesPerSecond: number;
  writes: number;
  expected: number;
  received: number;
  deliveriesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuMicrosPerDelivery: number;
  serverCores: number;
  loadCores: number;
  failedWrites: number;
  sustained: boolean;
  /** 2 when the first try at this rate was not sustained and the step was run again. */
  attempts: number;
}

export interface FanoutResult {
  transport: TransportName;
  joined: number;
  joinFailures: number;
  joinMs: number;
  lost: number;
  steps: FanoutStep[];
}

export interface ManyGroupsJob extends LoadJob {
  transport: TransportName;
  target: Target;
  groups: number;
  subscribersPerGroup: number;
  writesPerGroupPerSecond: number;
  warmupMs: number;
  measureMs: number;
  drainMs: number;
  joinTimeoutMs: number;
  /** Prefix of the group ids, unique per run so no run sees another's items. */
  groupPrefix: string;
}

export interface ManyGroupsResult {
  transport: TransportName;
  joined: number;
  joinFailures: number;
  joinMs: number;
  lost: number;
  writes: number;
  expected: number;
  received: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  writeAckP50Ms: number;
  writeAckP99Ms: number;
  serverCores: number;
  serverCpuMicrosPerDelivery: number;
  loadCores: number;
  failedWrites: number;
}

export interface IdleJob extends LoadJob {
  transport: TransportName;
  target: Target;
  /** Resident memory is read at each of these subscriber counts, ascending. */
  checkpoints: number[];
  settleMs: number;
  joinTimeoutMs: number;
  groupId: string;
}

export interface IdleResult {
  transport: TransportName;
  baselineRssBytes: number;
  points: Array<{ subscribers: number; rssBytes: number }>;
  joinFailures: number;
  lost: number;
  joinMs: number;
}

export interface HotItemJob extends LoadJob {
  target: Target;
  callers: number;
  warmupMs: number;
  measureMs: number;
  groupId: string;
}

export interface HotItemResult {
  callsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuMicrosPerCall: number;
  /** Every Update that was acknowledged, warm-up included. */
  acknowledged: number;
  errors: number;
  /** The counter's value read back at the end: equal to `acknowledged` when nothing was lost. */
  finalValue: number;
}

/** Each load generator in bench/load by file name, with its job and its result. */
export interface Loads {
  unary: { job: UnaryJob; result: UnaryFigures[] };
  fanout: { job: FanoutJob; result: FanoutResult };
  "many-groups": { job: ManyGroupsJob; result: ManyGroupsResult };
  idle: { job: IdleJob; result: IdleResult };
  "hot-item": { job: HotItemJob; result: HotItemResult };
  "slow-consumers": { job: SlowConsumersJob; result: SlowConsumersResult };
  "snapshot-join": { job: SnapshotJoinJob; result: SnapshotJoinResult };
  "saturation-subscribers": { job: SaturationSubscribersJob; result: SaturationSubscribersResult };
  "saturation-probe": { job: SaturationProbeJob; result: SaturationProbeResult };
}
