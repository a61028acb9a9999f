import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import type { JsonObject } from "../../src/index.js";
import { StreamService } from "../../gen/iii/stream/v1/stream_pb.js";
import { json, op, value } from "../conformance/proto-values.js";
import { SubscriptionReader } from "../conformance/subscription-reader.js";
import { spawnServer, type ServerProcess } from "./process.js";
import { transportFor } from "./server.js";

/**
 * Kills the real server with SIGKILL while concurrent writers are mid-flight, restarts
 * it on the same data directory, and checks that every acknowledged write is there
 * with exactly its acknowledged value and revision, and that group offsets carry on
 * gapless and never repeat. Each writer owns its items and waits for each reply, so
 * at the kill it has at most one write whose outcome is unknown: the item must then
 * show either the last acknowledged state or that write's result, nothing else.
 * Shared by the crash test and the longer soak under bench/; throws on a violation.
 */
export interface KillCycleOptions {
  dataDir: string;
  cycles: number;
  writers: number;
  groups: number;
  itemsPerWriter: number;
  /**
   * The kill comes a random time in this range after the writers are busy (as many writes
   * acknowledged in the cycle as there are writers), so that a loaded machine, slow to start
   * the server or the writers, still kills a server in the middle of writing.
   */
  killAfterMs: { min: number; max: number };
  /** Extra server flags, e.g. a relaxed sync interval. */
  serverArgs?: string[];
  onCycle?: (cycle: number, acked: number) => void;
  /** Told of every acknowledged write: its group, item and offset. */
  onAck?: (groupId: string, itemId: string, offset: number) => void;
}

export interface KillCycleResult {
  acked: number;
  /** The server of the last restart, still running: the caller stops it. */
  server: ServerProcess;
}

type ItemState = { revision: number; value: JsonObject } | undefined;

interface TrackedItem {
  groupId: string;
  itemId: string;
  acked: ItemState;
  /** The outcome of the write in flight when the server died, if one was. */
  inFlight: { state: ItemState } | undefined;
}

interface TrackedGroup {
  /** Every offset a reply acknowledged; one seen twice means an offset repeated. */
  ackedOffsets: Set<number>;
  /** The group's offset at the last restart: every later acknowledged offset is above it. */
  floor: number;
  maxAcked: number;
  ackedSinceRestart: number;
}

const STREAM = "crash";
const REFUSALS = new Set([Code.FailedPrecondition, Code.InvalidArgument, Code.NotFound]);

export async function runKillCycles(options: KillCycleOptions): Promise<KillCycleResult> {
  const items: TrackedItem[] = [];
  for (let w = 0; w < options.writers; w++) {
    for (let k = 0; k < options.itemsPerWriter; k++) {
      items.push({ groupId: `g${(w + k) % options.groups}`, itemId: `w${w}-i${k}`, acked: undefined, inFlight: undefined });
    }
  }
  const groups = new Map<string, TrackedGroup>();
  for (let g = 0; g < options.groups; g++) groups.set(`g${g}`, { ackedOffsets: new Set(), floor: 0, maxAcked: 0, ackedSinceRestart: 0 });
  const start = () => spawnServer(["--port", "0", "--data-dir", options.dataDir, ...(options.serverArgs ?? [])]);

  let acked = 0;
  for (let cycle = 0; cycle < options.cycles; cycle++) {
    const server = await start();
    try {
      const client = createClient(StreamService, transportFor(server.url, "connect-binary-h2"));
      await verifyAfterRestart(client, items, groups, cycle);
      const per = options.itemsPerWriter;
      let ackedInCycle = 0;
      let busy!: () => void;
      const writersBusy = new Promise<void>((resolve) => (busy = resolve));
      const onAck = () => {
        if (++ackedInCycle === options.writers) busy();
      };
      const writers = Array.from({ length: options.writers }, (_, w) =>
        runWriter(client, items.slice(w * per, (w + 1) * per), groups, onAck, options.onAck),
      );
      // A writer that throws ends the wait too: its error is reported below.
      await Promise.race([writersBusy, Promise.all(writers)]);
      const { min, max } = options.killAfterMs;
      await sleep(min + Math.random() * (max - min));
      server.child.kill("SIGKILL");
      await server.exited;
      let cycleAcked = 0;
      for (const count of await Promise.all(writers)) cycleAcked += count;
      acked += cycleAcked;
      options.onCycle?.(cycle, cycleAcked);
    } finally {
      server.child.kill("SIGKILL");
    }
  }
  const server = await start();
  try {
    await verifyAfterRestart(createClient(StreamService, transportFor(server.url, "connect-binary-h2")), items, groups, options.cycles);
  } catch (error) {
    server.child.kill("SIGKILL");
    throw error;
  }
  return { acked, server };
}

/**
 * One writer: Set, Update (increment) and Delete on its own items, one at a time,
 * until a call fails because the server died. Returns how many writes were acknowledged.
 */
async function runWriter(
  client: Client<typeof StreamService>,
  own: TrackedItem[],
  groups: Map<string, TrackedGroup>,
  onAck: () => void,
  report?: KillCycleOptions["onAck"],
): Promise<number> {
  let acked = 0;
  for (let n = 0; ; n++) {
    const item = own[n % own.length];
    const current = item.acked;
    const key = { streamName: STREAM, groupId: item.groupId, itemId: item.itemId };
    const choice = Math.random();
    let expected: ItemState;
    let call: Promise<{ revision?: bigint; offset: bigint; newValue?: unknown }>;
    if (current === undefined || choice < 0.5) {
      expected = { revision: (current?.revision ?? 0) + 1, value: { n: Math.floor(Math.random() * 1000), writes: n } };
      call = client.set({ ...key, data: value(expected.value), ifRevision: BigInt(current?.revision ?? 0) });
    } else if (choice < 0.8) {
      expected = { revision: current.revision + 1, value: { ...current.value, n: (current.value.n as number) + 1 } };
      call = client.update({ ...key, ops: [op.increment(["n"], 1)], ifRevision: BigInt(current.revision) });
    } else {
      expected = undefined;
      call = client.delete({ ...key, ifRevision: BigInt(current.revision) });
    }
    item.inFlight = { state: expected };
    let reply;
    try {
      reply = await call;
    } catch (error) {
      const code = ConnectError.from(error).code;
      // A refusal comes from a live server: the store lost track of the item.
      if (REFUSALS.has(code)) throw new Error(`${item.itemId}: ${Code[code]}: ${String(error)}`);
      // The server died: this write's outcome is unknown and stays in flight.
      return acked;
    }
    if (expected) {
      assert.equal(Number(reply.revision), expected.revision, `${item.itemId}: acknowledged revision`);
      assert.deepEqual(json(reply.newValue as never), expected.value, `${item.itemId}: acknowledged value`);
    }
    item.acked = expected;
    item.inFlight = undefined;
    recordOffset(groups.get(item.groupId)!, Number(reply.offset));
    report?.(item.groupId, item.itemId, Number(reply.offset));
    acked++;
    onAck();
  }
  return acked;
}

function recordOffset(group: TrackedGroup, offset: number): void {
  assert.ok(offset > group.floor, `acknowledged offset ${offset} is not above the group's offset at the last restart (${group.floor})`);
  assert.ok(!group.ackedOffsets.has(offset), `offset ${offset} was acknowledged twice`);
  group.ackedOffsets.add(offset);
  group.maxAcked = Math.max(group.maxAcked, offset);
  group.ackedSinceRestart++;
}

/** Checks the restarted store against what was acknowledged, then adopts what it holds. */
async function verifyAfterRestart(
  client: Client<typeof StreamService>,
  items: TrackedItem[],
  groups: Map<string, TrackedGroup>,
  cycle: number,
): Promise<void> {
  /** Per group: writes in flight at the kill that turned out to be committed. */
  const committedInFlight = new Map<string, number>();
  for (const item of items) {
    const reply = await client.get({ streamName: STREAM, groupId: item.groupId, itemId: item.itemId });
    const stored: ItemState = reply.item ? { revision: Number(reply.item.revision), value: json(reply.item.data) as JsonObject } : undefined;
    const allowed = item.inFlight ? [item.acked, item.inFlight.state] : [item.acked];
    assert.ok(
      allowed.some((state) => isDeepStrictEqual(state, stored)),
      `cycle ${cycle}, item ${item.groupId}/${item.itemId}: stored ${JSON.stringify(stored)}, acknowledged ${JSON.stringify(item.acked)}` +
        (item.inFlight ? `, in flight ${JSON.stringify(item.inFlight.state)}` : ""),
    );
    if (item.inFlight && isDeepStrictEqual(stored, item.inFlight.state)) {
      committedInFlight.set(item.groupId, (committedInFlight.get(item.groupId) ?? 0) + 1);
    }
    item.acked = stored;
    item.inFlight = undefined;
  }
  for (const [groupId, group] of groups) {
    const offset = await snapshotOffset(client, groupId, items);
    // Offsets are gapless, so the group moved by exactly the writes that were kept.
    const expected = group.floor + group.ackedSinceRestart + (committedInFlight.get(groupId) ?? 0);
    assert.equal(offset, expected, `cycle ${cycle}, group ${groupId}: offset after restart`);
    group.floor = offset;
    group.maxAcked = offset;
    group.ackedSinceRestart = 0;
  }
}

/** The group's offset from a Subscribe snapshot, whose items must agree with Get. */
async function snapshotOffset(client: Client<typeof StreamService>, groupId: string, items: TrackedItem[]): Promise<number> {
  const reader = new SubscriptionReader(client, { streamName: STREAM, groupId });
  try {
    const snapshot = await reader.expectNext("snapshot");
    const inSnapshot = new Map(snapshot.items.map((item) => [item.itemId, { revision: Number(item.revision), value: json(item.data) }]));
    for (const item of items.filter((i) => i.groupId === groupId)) {
      assert.deepEqual(inSnapshot.get(item.itemId), item.acked, `snapshot of ${groupId} disagrees with Get on ${item.itemId}`);
    }
    return Number(snapshot.offset);
  } finally {
    reader.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
