/**
 * The jobs of the `scale` scenario's processes and the figures they hand back. Types
 * only, shared by the suite (bench/suite/scenarios/scale.ts) and the processes it starts.
 */
import type { LoadJob } from "./load-io.js";

export type ScaleAdapter = "memory" | "file" | "redis";

/** How bench/load/scale-server.ts builds its server. */
export interface ScaleServerConfig {
  adapter: ScaleAdapter;
  /** The file adapter's directory. */
  dataDir?: string;
  redisUrl?: string;
  /** The Redis adapter's key prefix, unique per run so that the keys can be deleted after. */
  keyPrefix?: string;
}

/**
 * Items written straight through the store's port (ItemStore.commit), not over RPC:
 * groups `<groupPrefix><first>` … `<groupPrefix><first + groups - 1>`, each with
 * `itemsPerGroup` items created in order.
 */
export interface FillPlan {
  streamName: string;
  groupPrefix: string;
  firstGroup: number;
  groups: number;
  itemsPerGroup: number;
}

/** What the suite asks a running scale server, one JSON line on its stdin each. */
export type ServerRequest = { id: number; op: "fill"; plan: FillPlan } | { id: number; op: "gc" };

export interface ServerReply {
  id: number;
  ok: boolean;
  error?: string;
  /** How long the request took inside the server. */
  ms: number;
}

export interface ItemsJob extends LoadJob {
  url: string;
  /** The server process, whose CPU time each snapshot costs is read from /proc. */
  serverPid: number;
  streamName: string;
  groupId: string;
  /** Items the group holds: Sets overwrite and Gets read items picked among them. */
  items: number;
  warmupCalls: number;
  /** Set calls, then as many Get calls, one at a time. */
  calls: number;
  /** Full snapshots read and timed, one after the other, after one that is not. */
  snapshots: number;
}

export interface ItemsResult {
  setP50Ms: number;
  setP99Ms: number;
  getP50Ms: number;
  getP99Ms: number;
  /** Each snapshot: from the Subscribe call to the Snapshot message whose `more` is false. */
  snapshotMs: number[];
  /** Server CPU time over each snapshot (/proc, 10 ms ticks). */
  snapshotServerCpuMs: number[];
  /** Encoded size of the snapshot's messages (the last read). */
  snapshotBytes: number;
  snapshotMessages: number;
  snapshotItems: number;
  errors: number;
}

export interface GroupWalkJob extends LoadJob {
  url: string;
  streamName: string;
  pageSize: number;
  walks: number;
}

export interface GroupWalkResult {
  /** Each timed walk (after an untimed one): the first ListGroups call to the answer without next_page_token. */
  walkMs: number[];
  pages: number;
  groups: number;
  /** The largest response, encoded. */
  largestPageBytes: number;
  /** Why a walk failed (the walks after it were not made). */
  error?: string;
}

export interface SubscribersJob extends LoadJob {
  url: string;
  /** The server (bench/load/scale-server.ts): its memory and CPU are read from /proc, and SIGUSR2 makes it collect garbage. */
  serverPid: number;
  /** The group, in the fan-out scenarios' stream (transports/transport.ts STREAM_NAME), which their writer writes to. */
  groupId: string;
  /** Subscriber counts, ascending; each is measured idle, then under the writer. */
  checkpoints: number[];
  /** Subscribe calls sharing one HTTP/2 connection (see scale-subscribers.ts). */
  streamsPerConnection: number;
  writesPerSecond: number;
  windowMs: number;
  /** Paced writes before the first window, not measured. */
  warmupWrites: number;
  settleMs: number;
  joinTimeoutMs: number;
  drainMs: number;
}

export interface SubscribersPoint {
  subscribers: number;
  joinFailures: number;
  joinMs: number;
  /** Server RSS, settled, with the subscribers joined and nothing written since. */
  idleRssBytes: number;
  writes: number;
  expected: number;
  received: number;
  serverCpuMicrosPerDelivery: number;
  serverCores: number;
  loadCores: number;
  p50Ms: number;
  p99Ms: number;
}

export interface SubscribersResult {
  baselineRssBytes: number;
  points: SubscribersPoint[];
  lost: number;
}

export interface FileStoreJob extends LoadJob {
  dataDir: string;
  streamName: string;
  items: number;
  itemsPerGroup: number;
}

export interface FileStoreResult {
  /** "clone" (rows of one group written through FileStore, copied in SQL), "commit" (every item through FileStore), or "empty" (nothing built). */
  method: "clone" | "commit" | "empty";
  groups: number;
  items: number;
  ms: number;
  fileBytes: number;
}

/** Each scale process by file name, with its job and its result. */
export interface ScaleLoads {
  "scale-items": { job: ItemsJob; result: ItemsResult };
  "scale-group-walk": { job: GroupWalkJob; result: GroupWalkResult };
  "scale-subscribers": { job: SubscribersJob; result: SubscribersResult };
  "scale-file-store": { job: FileStoreJob; result: FileStoreResult };
}
