/**
 * Jobs and results of the two memory loads of issue 14: subscribers that stop reading
 * while a writer keeps writing (slow-consumers.ts), and many subscribers joining one
 * large group at once (snapshot-join.ts). Types only, shared by the suite and the load
 * processes.
 */
import type { Target } from "./jobs.js";
import type { LoadJob } from "./load-io.js";

/** How a stalled subscriber talks to the server. */
export type StallingTransport = "subscribe-connect-h2" | "subscribe-grpc-h2" | "subscribe-connect-json-h1" | "stream-socket";

/** Resident memory of the server over a load: read every `sampleMs`, kept every `pointMs`, with the highest reading. */
export interface RssSeries {
  sampleMs: number;
  pointMs: number;
  /** [ms since the series began, bytes]. */
  points: Array<[number, number]>;
  peakBytes: number;
  peakAtMs: number;
  /** Set when the server passed the job's memory guard and was killed to protect the machine. */
  guardTripped: boolean;
}

export interface SlowConsumersJob extends LoadJob {
  transport: StallingTransport;
  target: Target;
  /** Subscribers that join and then stop reading. */
  subscribers: number;
  /** Length of the write phase. */
  seconds: number;
  writesPerSecond: number;
  /** Size of each written value's JSON. */
  changeBytes: number;
  groupId: string;
  joinTimeoutMs: number;
  /** How long each subscriber may take, once it reads again, to learn that (and why) it was ended. */
  resumeTimeoutMs: number;
  sampleMs: number;
  /** RSS readings are kept this far apart (the peak is taken from every reading). */
  pointMs: number;
  /** The server is killed when its RSS passes this many bytes. */
  memoryGuardBytes: number;
}

/** What one stalled subscriber saw once it read again, or when its stream was reset while it did not read. */
export interface StallOutcome {
  /**
   * How the stream ended: "RESOURCE_EXHAUSTED", "UNAVAILABLE", ... for a status (Connect
   * end-of-stream, gRPC trailers); "close 4429" for the stream socket; "reset <code>"
   * for an HTTP/2 stream reset without a status; "cut" for a connection that closed
   * without a status; "not ended" when nothing ended it within the resume timeout.
   */
  ending: string;
  /** The status message, close reason or socket error, as received. */
  detail: string;
  /** Whether the status (message, metadata) or close reason names a group offset to resume from. */
  namesOffset: boolean;
  /** Ms after the first write when the ending reached the client (a reset arrives while it is paused). */
  atMs: number;
  /** Whether it arrived before the subscriber read again. */
  whilePaused: boolean;
  /** Messages the subscriber received after it read again, before the ending. */
  messagesAfterResume: number;
  bytesAfterResume: number;
}

/** The stalled subscribers that ended one way, summarised: a thousand outcomes each would swell the results. */
export interface EndingSummary {
  ending: string;
  subscribers: number;
  namesOffset: number;
  whilePaused: number;
  /** When the ending reached the clients, ms after the first write: fewest, median, most (NaN for "not ended"). */
  atMs: { min: number; median: number; max: number };
  messagesAfterResume: { median: number; max: number };
  bytesAfterResumeMedian: number;
  /** The detail the first of them saw. */
  detail: string;
}

export interface SlowConsumersResult {
  transport: StallingTransport;
  joined: number;
  joinFailures: number;
  joinMs: number;
  /** Server RSS: fresh, once every subscriber joined, highest while writing, when writing stopped, and after every subscriber read its ending and was closed. */
  rssFreshBytes: number;
  rssStartBytes: number;
  rssEndBytes: number;
  rssAfterBytes: number;
  rss: RssSeries;
  /** When the first write was sent, in the RSS series' time. */
  writesStartMs: number;
  writes: number;
  failedWrites: number;
  writeAckP50Ms: number;
  writeAckP99Ms: number;
  /** The slowest acknowledgement of the writes sent in each second of the write phase, ms: when writers were held up. */
  writeAckMaxMsBySecond: number[];
  /** Bytes of one change as the reading subscriber received it (the Connect or WebSocket frame). */
  changeFrameBytes: number;
  /** A subscriber that reads throughout: the messages it received after its join, and how it was ended if it was. */
  reader: { messages: number; ended: string | undefined };
  serverCpuSeconds: number;
  loadCores: number;
  endings: EndingSummary[];
}

export interface SnapshotJoinJob extends LoadJob {
  target: Target;
  groupId: string;
  items: number;
  /** Size of each item's value as JSON. */
  itemBytes: number;
  /** Sets in flight at once while filling the group. */
  prefillConcurrency: number;
  subscribers: number;
  /** Each subscriber must have its whole snapshot within this. */
  joinTimeoutMs: number;
  sampleMs: number;
  /** RSS readings are kept this far apart (the peak is taken from every reading). */
  pointMs: number;
  memoryGuardBytes: number;
  /** Redis to read `used_memory` from while subscribers join (Redis adapter only). */
  redisUrl?: string;
}

/** One subscriber's join, as the load follows it. */
export interface SnapshotJoinSubscriber {
  /** Ms from the start of the join (every subscriber starts then) to its first snapshot chunk; NaN if none came. */
  firstChunkMs: number;
  /** Ms to the chunk with `more` unset; NaN if it never came. */
  completeMs: number;
  chunks: number;
  items: number;
  bytes: number;
  /** The snapshot's offset (every chunk's must be the same). */
  offset: number;
  /** Chunks whose offset differed from the first's. */
  offsetMismatches: number;
  /** Why it failed, if it did. */
  error: string | undefined;
  /** Ms from the start of the join to the failure; NaN when it did not fail. */
  failedMs: number;
}

/** Fewest, median and most of a figure over the subscribers that have it. */
export interface Spread {
  min: number;
  median: number;
  max: number;
}

/** Every subscriber's join, summarised: the results stay small whatever the count. */
export interface SnapshotJoins {
  subscribers: number;
  /** Those that received every item, in chunks of one offset, the last with `more` unset. */
  complete: number;
  firstChunkMs: Spread;
  completeMs: Spread;
  chunks: Spread;
  items: Spread;
  bytes: Spread;
  offsetMismatches: number;
  failures: Array<{ error: string; subscribers: number; firstMs: number; lastMs: number }>;
}

export interface SnapshotJoinResult {
  prefill: { items: number; ms: number; errors: number };
  rssBeforeBytes: number;
  rss: RssSeries;
  /** RSS once every subscriber had its snapshot (or timed out), all still subscribed. */
  rssJoinedBytes: number;
  /** RSS after the subscribers disconnected and the server settled. */
  rssAfterBytes: number;
  /** Ms until the last subscriber had its whole snapshot; NaN when one never did. */
  allCompleteMs: number;
  joins: SnapshotJoins;
  serverCpuSeconds: number;
  loadCores: number;
  /** Highest `used_memory` of Redis during the join (Redis adapter), bytes. */
  redisPeakBytes: number | undefined;
  redisBeforeBytes: number | undefined;
}
