/**
 * Jobs and results of the saturation loads (issue 13, item 5): many subscriptions on
 * one group read as fast as their clients can (saturation-subscribers.ts), while
 * another process offers writes at a fixed rate and probes the server with Set+Get
 * pairs on a group nobody subscribed to (saturation-probe.ts). Two processes, so that
 * the probe's latencies are the server's and not the subscribers' event loop. Types
 * only, shared by the suite and the load processes.
 */
import type { LoadJob } from "./load-io.js";
import type { RssSeries } from "./memory-jobs.js";

/** How the subscriptions reach the server: Subscribe calls sharing HTTP/2 connections, or joins sharing stream sockets. */
export type SaturationTransport = "subscribe" | "stream-socket";

export interface SaturationSubscribersJob extends LoadJob {
  transport: SaturationTransport;
  url: string;
  groupId: string;
  /** Subscriptions in all. */
  subscriptions: number;
  /** Subscribe calls per HTTP/2 connection, or joins per stream socket. */
  perConnection: number;
  /** Every `sampleEvery`-th subscription decodes and counts what it receives; the others only read. */
  sampleEvery: number;
  /** Connections being opened and joined at once. */
  joinParallelConnections: number;
  /** A connection whose subscriptions have not all joined within this is closed and counted as failed. */
  joinTimeoutMs: number;
  /** Written (JSON: joined, failures) once every connection joined or failed. */
  readyFile: string;
  /** The load reports and exits once this file exists. */
  stopFile: string;
}

export interface SaturationSubscribersResult {
  transport: SaturationTransport;
  connections: number;
  joined: number;
  joinFailures: number;
  joinMs: number;
  /** Subscriptions that ended while joined (a reset, a closed connection, an error frame). */
  lost: number;
  /** Sampled subscriptions that joined. */
  sampled: number;
  /** Changes the sampled subscriptions received, all together. */
  sampleDeliveries: number;
  /** [epoch second, changes the sampled subscriptions received in it]. */
  sampleBySecond: Array<[number, number]>;
  /** Fewest and most changes one sampled subscription received. */
  sampleMinReceived: number;
  sampleMaxReceived: number;
  /** Write (the writer's clock when it sent the Set) to receipt by a sampled subscription, ms; both clocks are the machine's. */
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
  /** Bytes every subscription's connection read, all together. */
  bytesRead: number;
  /** This process's share of its core from the end of the joins to the stop. */
  loadCores: number;
}

export interface SaturationProbeJob extends LoadJob {
  url: string;
  serverPid: number;
  /** The group the subscriptions joined: the writer's target. */
  groupId: string;
  /** The group the probe writes and reads, which nobody subscribed to. */
  probeGroupId: string;
  writesPerSecond: number;
  /** Length of the write window. */
  seconds: number;
  /** Probe pairs before the writes begin (subscribers joined, nothing written): the unloaded reference. */
  baselineMs: number;
  /** A probe pair starts at most this often; a slower pair is followed by the next at once. */
  probeIntervalMs: number;
  /** Unmeasured writes to a group nobody joined, and unmeasured probe pairs, before anything is measured. */
  warmupWrites: number;
  warmupPairs: number;
  /** After the window, how long outstanding writes may still be acknowledged. */
  drainMs: number;
  /** A single call that takes longer fails (counted, not retried). */
  callTimeoutMs: number;
  sampleMs: number;
  memoryGuardBytes: number;
}

/** Latencies of the probe's Set+Get pairs over one phase. */
export interface ProbeFigures {
  pairs: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  setP99Ms: number;
  getP99Ms: number;
}

/** One second of the write window (and of the drain after it), counted from the window's start. */
export interface SaturationSecond {
  offered: number;
  /** Writes acknowledged in this second, whenever they were sent. */
  acked: number;
  /** Probe pairs that started in this second, and the slowest of them. */
  probePairs: number;
  probeMaxMs: number;
  /** Server CPU over the second, in cores (1 = one core busy throughout). */
  serverCores: number;
  rssBytes: number;
}

export interface SaturationProbeResult {
  /** The writer's clock (epoch ms) when the window began: the subscribers' per-second counts are aligned on it. */
  windowStartEpochMs: number;
  windowMs: number;
  baseline: ProbeFigures;
  probe: ProbeFigures;
  writes: {
    offered: number;
    /** Acknowledged before the window ended. */
    ackedInWindow: number;
    /** Acknowledged by the end of the drain. */
    acked: number;
    failed: number;
    /** Neither acknowledged nor failed by the end of the drain. */
    outstanding: number;
    ackP50Ms: number;
    ackP99Ms: number;
    ackMaxMs: number;
  };
  seconds: SaturationSecond[];
  serverCpuSeconds: number;
  serverCores: number;
  rssStartBytes: number;
  rssEndBytes: number;
  rss: RssSeries;
  /** When the window began, in the RSS series' time. */
  windowStartRssMs: number;
  loadCores: number;
}
