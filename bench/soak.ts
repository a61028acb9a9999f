/**
 * Soak: the real server (CLI, file adapter) under a mixed load for a long time, sampled
 * every few seconds, failing when memory grows without bound, a write it acknowledged is
 * lost, or a subscriber sees a gap.
 *
 *   npm run soak                      # 10 minutes
 *   npm run soak -- --minutes 2       # (or --seconds 90)
 *   npm run soak -- --writers 8 --rate 40 --subscribers 32 --sample-seconds 5
 *
 * The load: writers making Sets (each acknowledged write recorded with its offset); one
 * recorder per group that stays subscribed all along; subscribers that join and leave all
 * the time over Connect (binary on HTTP/2, JSON on HTTP/1.1), gRPC and the stream socket,
 * half of them resuming from an offset; and slow consumers that stop reading and are held
 * until the server ends them. Every sample reads the server's resident memory and open
 * files from /proc, and its event-loop delay from a probe preloaded into it.
 *
 * It fails (exit 1) when, at the end:
 * - an acknowledged write is missing: an item does not hold the last value acknowledged
 *   for it, or a recorder never saw an acknowledged offset;
 * - a subscriber saw a gap, a duplicate or a change out of order;
 * - memory grew without bound: after the first fifth of the run (warm-up), the median RSS
 *   of the second half of the samples exceeds that of the first half by more than 25%
 *   and by more than 32 MiB (a server whose memory has levelled off passes, one that
 *   keeps growing under a steady load does not);
 * - open files after every client left exceed those before the load by more than 20.
 * Figures go to bench/results/soak.json.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fromJson, toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { WebSocket } from "ws";
import { StreamService, type SubscribeResponse } from "../gen/iii/stream/v1/stream_pb.js";
import { rssBytes } from "./suite/proc-stats.js";
import { startOurs } from "./suite/processes.js";

interface Settings {
  seconds: number;
  sampleSeconds: number;
  writers: number;
  /** Sets per second per writer. */
  rate: number;
  groups: number;
  /** Subscribers joining and leaving at any moment. */
  subscribers: number;
  /** Slow consumers at any moment. */
  slowConsumers: number;
}

function parseSettings(argv: string[]): Settings {
  const settings: Settings = { seconds: 600, sampleSeconds: 10, writers: 4, rate: 20, groups: 8, subscribers: 16, slowConsumers: 4 };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, raw] = [argv[i], Number(argv[i + 1])];
    if (!(raw > 0)) throw new Error(`${flag} needs a positive number, got ${argv[i + 1]}`);
    if (flag === "--minutes") settings.seconds = raw * 60;
    else if (flag === "--seconds") settings.seconds = raw;
    else if (flag === "--sample-seconds") settings.sampleSeconds = raw;
    else if (flag === "--writers") settings.writers = raw;
    else if (flag === "--rate") settings.rate = raw;
    else if (flag === "--groups") settings.groups = raw;
    else if (flag === "--subscribers") settings.subscribers = raw;
    else if (flag === "--slow-consumers") settings.slowConsumers = raw;
    else throw new Error(`unknown flag ${flag}`);
  }
  return settings;
}

const STREAM = "soak";
const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const random = (n: number) => Math.floor(Math.random() * n);
const groupName = (g: number) => `g${g}`;

/** Resolves when the load stops: slow consumers stop waiting then. */
let stopLoad: () => void = () => undefined;
const loadStopped = new Promise<void>((resolve) => (stopLoad = resolve));
const pause = (ms: number) => Promise.race([sleep(ms), loadStopped]);

/** Gaps, duplicates and disorder seen by any subscriber, with where. */
const problems: string[] = [];
function problem(text: string): void {
  if (problems.length < 50) problems.push(text);
}

/**
 * What one subscriber knows of its group's offsets: a snapshot sets it, each change must
 * be the next one (group offsets have no holes), heartbeats and events may not go back.
 */
class OffsetCheck {
  constructor(
    private readonly who: string,
    public offset: number | undefined,
  ) {}

  snapshot(offset: number): void {
    if (this.offset !== undefined && offset < this.offset) problem(`${this.who}: snapshot at ${offset} after ${this.offset}`);
    this.offset = offset;
  }

  change(offset: number): void {
    if (this.offset === undefined) problem(`${this.who}: change ${offset} before any snapshot`);
    else if (offset !== this.offset + 1) problem(`${this.who}: change ${offset} after ${this.offset}`);
    this.offset = offset;
  }

  marker(offset: number): void {
    if (this.offset !== undefined && offset < this.offset) problem(`${this.who}: marker at ${offset} after ${this.offset}`);
    else this.offset = offset;
  }
}

function applyResponse(check: OffsetCheck, response: SubscribeResponse, onChange?: (offset: number) => void): void {
  const message = response.message;
  if (message.case === "snapshot") {
    if (!message.value.more) check.snapshot(Number(message.value.offset));
  } else if (message.case === "change") {
    const offset = Number(message.value.offset);
    check.change(offset);
    onChange?.(offset);
  } else if (message.case === "heartbeat") check.marker(Number(message.value.offset));
}

async function main(): Promise<void> {
  const settings = parseSettings(process.argv.slice(2));
  const dataDir = mkdtempSync(join(tmpdir(), "iii-stream-soak-"));
  const probeFile = join(dataDir, "..", `${dataDir.split("/").pop()}-probe.json`);
  const probe = fileURLToPath(new URL("./load/loop-delay-probe.mjs", import.meta.url));
  process.env.SOAK_PROBE_FILE = probeFile;
  process.env.SOAK_PROBE_INTERVAL_MS = String(settings.sampleSeconds * 1000);
  const server = await startOurs("soak", ["--data-dir", dataDir], ["--import", probe]);
  console.log(`soak: ${server.url} pid ${server.pid}, ${JSON.stringify(settings)}`);

  const h2 = createConnectTransport({ baseUrl: server.url, httpVersion: "2", useBinaryFormat: true });
  const clients: Record<string, Client<typeof StreamService>> = {
    "connect-binary-h2": createClient(StreamService, h2),
    "connect-json-h1": createClient(StreamService, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" })),
    grpc: createClient(StreamService, createGrpcTransport({ baseUrl: server.url })),
  };
  const writerClient = clients["connect-binary-h2"];
  const openFiles = () => {
    try {
      return readdirSync(`/proc/${server.pid}/fd`).length;
    } catch {
      return NaN;
    }
  };
  const filesBefore = openFiles();
  let running = true;
  const started = Date.now();

  // Writers: each acknowledged Set is recorded, as the last value of its item and as an offset of its group.
  const lastAcked = new Map<string, { seq: number; revision: bigint }>();
  const ackedOffsets = Array.from({ length: settings.groups }, () => new Set<number>());
  const counts = { acked: 0, failedWrites: 0, joins: 0, resumes: 0, slowEnded: new Map<string, number>(), recorderRestarts: 0 };
  const writer = async (w: number) => {
    let due = Date.now();
    for (let seq = 0; running; seq++) {
      const g = (w + seq) % settings.groups;
      const itemId = `w${w}-i${seq % 25}`;
      // A steady rate: a writer that fell more than a second behind does not make up for it in a burst.
      due = Math.max(due + 1000 / settings.rate, Date.now() - 1000);
      if (due > Date.now()) await sleep(due - Date.now());
      try {
        const pad = "x".repeat(64 + random(2048));
        const reply = await writerClient.set({ streamName: STREAM, groupId: groupName(g), itemId, data: fromJson(ValueSchema, { w, seq, pad }) });
        lastAcked.set(`${g}/${itemId}`, { seq, revision: reply.revision });
        ackedOffsets[g].add(Number(reply.offset));
        counts.acked++;
      } catch {
        counts.failedWrites++;
      }
    }
  };

  // Recorders: one per group for the whole run, resuming from their offset if the server ends them.
  const recorderSeen = Array.from({ length: settings.groups }, () => new Set<number>());
  const recorderChecks: OffsetCheck[] = [];
  const recorderAborts: AbortController[] = [];
  const recorder = async (g: number) => {
    const check = new OffsetCheck(`recorder ${groupName(g)}`, undefined);
    recorderChecks[g] = check;
    const abort = (recorderAborts[g] = new AbortController());
    while (!abort.signal.aborted) {
      try {
        const fromOffset = check.offset === undefined ? undefined : BigInt(check.offset);
        for await (const response of writerClient.subscribe({ streamName: STREAM, groupId: groupName(g), fromOffset }, { signal: abort.signal })) {
          applyResponse(check, response, (offset) => recorderSeen[g].add(offset));
        }
      } catch (error) {
        if (abort.signal.aborted) return;
        counts.recorderRestarts++;
        console.log(`soak: recorder ${groupName(g)} ended (${ConnectError.from(error).message}); resuming from ${check.offset}`);
        await sleep(200);
      }
    }
  };

  // Subscribers that come and go: a random transport, group and life of 1 to 5 s; half resume from an offset.
  let subscribersOpen = 0;
  const churner = async (k: number) => {
    while (running) {
      const g = random(settings.groups);
      const kinds = [...Object.keys(clients), "stream-socket"];
      const kind = kinds[random(kinds.length)];
      const recorded = recorderChecks[g]?.offset;
      const resumeFrom = recorded !== undefined && Math.random() < 0.5 ? Math.max(0, recorded - random(50)) : undefined;
      const check = new OffsetCheck(`subscriber ${k} (${kind}, ${groupName(g)}${resumeFrom === undefined ? "" : ` from ${resumeFrom}`})`, resumeFrom);
      const lifeMs = 1000 + random(4000);
      subscribersOpen++;
      counts.joins++;
      if (resumeFrom !== undefined) counts.resumes++;
      try {
        if (kind === "stream-socket") await streamSocketFor(server.url, g, resumeFrom, check, lifeMs);
        else await subscribeFor(clients[kind], g, resumeFrom, check, lifeMs);
      } finally {
        subscribersOpen--;
      }
    }
  };

  // Slow consumers: join, read the first message, then stop reading for 20 to 40 s; the server should end them.
  const slowConsumer = async (k: number) => {
    while (running) {
      const outcome = k % 2 === 0 ? await slowSubscribe(writerClient, random(settings.groups)) : await slowStreamSocket(server.url, random(settings.groups));
      counts.slowEnded.set(outcome, (counts.slowEnded.get(outcome) ?? 0) + 1);
    }
  };

  const samples: Array<Record<string, number>> = [];
  const sample = () => {
    let probeSample: { loopDelayMs: { p50: number; p99: number; max: number }; heapUsedBytes: number } | undefined;
    try {
      probeSample = JSON.parse(readFileSync(probeFile, "utf8")) as typeof probeSample;
    } catch {
      // Not written yet.
    }
    const row = {
      seconds: Math.round((Date.now() - started) / 1000),
      rssMiB: Math.round(((rssBytes(server.pid) ?? NaN) / MiB) * 10) / 10,
      heapMiB: Math.round(((probeSample?.heapUsedBytes ?? NaN) / MiB) * 10) / 10,
      openFiles: openFiles(),
      loopP50Ms: probeSample?.loopDelayMs.p50 ?? NaN,
      loopP99Ms: probeSample?.loopDelayMs.p99 ?? NaN,
      loopMaxMs: probeSample?.loopDelayMs.max ?? NaN,
      acked: counts.acked,
      failedWrites: counts.failedWrites,
      subscribers: subscribersOpen,
      joins: counts.joins,
    };
    samples.push(row);
    console.log(`soak: ${Object.entries(row).map(([key, value]) => `${key} ${value}`).join(", ")}`);
  };

  sample();
  const tasks = [
    ...Array.from({ length: settings.groups }, (_, g) => recorder(g)),
    ...Array.from({ length: settings.writers }, (_, w) => writer(w)),
    ...Array.from({ length: settings.subscribers }, (_, k) => churner(k)),
    ...Array.from({ length: settings.slowConsumers }, (_, k) => slowConsumer(k)),
  ];
  const sampler = setInterval(sample, settings.sampleSeconds * 1000);
  await sleep(settings.seconds * 1000);
  running = false;
  stopLoad();
  clearInterval(sampler);
  sample();

  // Let the recorders catch up with the last acknowledged offset of their group, then check.
  const caughtUp = () => ackedOffsets.every((offsets, g) => [...offsets].every((offset) => recorderSeen[g].has(offset)));
  for (let waited = 0; waited < 15_000 && !caughtUp(); waited += 100) await sleep(100);
  let missingFromStreams = 0;
  ackedOffsets.forEach((offsets, g) => {
    for (const offset of offsets) if (!recorderSeen[g].has(offset)) missingFromStreams++;
  });
  for (const abort of recorderAborts) abort.abort();
  await Promise.allSettled(tasks.slice(settings.groups));

  let missingFromStore = 0;
  for (let g = 0; g < settings.groups; g++) {
    const stored = new Map<string, { seq: number; revision: bigint }>();
    let pageToken = "";
    do {
      const page = await writerClient.list({ streamName: STREAM, groupId: groupName(g), pageToken });
      for (const item of page.items) stored.set(item.itemId, { seq: (toJson(ValueSchema, item.data!) as { seq: number }).seq, revision: item.revision });
      pageToken = page.nextPageToken;
    } while (pageToken);
    for (const [key, acked] of lastAcked) {
      const [group, itemId] = key.split("/");
      if (Number(group) !== g) continue;
      const found = stored.get(itemId);
      // A later write may have been applied without its acknowledgement arriving (the run ended): newer is fine.
      if (!found || found.seq < acked.seq || found.revision < acked.revision) missingFromStore++;
    }
  }

  await sleep(1000);
  const filesAfter = openFiles();
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(probeFile, { force: true });

  const steady = samples.slice(Math.max(1, Math.ceil(samples.length / 5)));
  const half = Math.floor(steady.length / 2);
  const median = (rows: typeof samples) => {
    const sorted = rows.map((row) => row.rssMiB).sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)];
  };
  const firstHalfMiB = median(steady.slice(0, half));
  const secondHalfMiB = median(steady.slice(half));
  const growthMiB = secondHalfMiB - firstHalfMiB;
  const unbounded = half > 0 && growthMiB > 32 && secondHalfMiB > firstHalfMiB * 1.25;
  const loopP99 = samples.map((row) => row.loopP99Ms).filter(Number.isFinite);
  const summary = {
    settings,
    seconds: Math.round((Date.now() - started) / 1000),
    acknowledgedWrites: counts.acked,
    failedWrites: counts.failedWrites,
    lostWrites: missingFromStore + missingFromStreams,
    missingFromStore,
    missingFromStreams,
    subscriberProblems: problems.length,
    subscriberJoins: counts.joins,
    resumedJoins: counts.resumes,
    recorderRestarts: counts.recorderRestarts,
    slowConsumersEnded: Object.fromEntries(counts.slowEnded),
    rssMiB: { first: samples[0].rssMiB, peak: Math.max(...samples.map((row) => row.rssMiB)), last: samples.at(-1)!.rssMiB, firstHalfMedian: firstHalfMiB, secondHalfMedian: secondHalfMiB, growthMiB: Math.round(growthMiB * 10) / 10 },
    openFiles: { before: filesBefore, peak: Math.max(...samples.map((row) => row.openFiles)), afterClientsLeft: filesAfter },
    loopDelayP99Ms: { median: loopP99.sort((a, b) => a - b)[Math.floor(loopP99.length / 2)], max: Math.max(...loopP99) },
    memoryUnbounded: unbounded,
  };
  writeFileSync(fileURLToPath(new URL("./results/soak.json", import.meta.url)), `${JSON.stringify({ summary, samples, problems }, null, 2)}\n`);
  console.log(`soak: summary ${JSON.stringify(summary, null, 2)}`);
  const failures = [
    summary.lostWrites > 0 && `${summary.lostWrites} acknowledged writes lost`,
    problems.length > 0 && `subscribers saw gaps: ${problems.slice(0, 5).join("; ")}`,
    unbounded && `memory grew from a median ${firstHalfMiB} MiB to ${secondHalfMiB} MiB under a steady load`,
    filesAfter - filesBefore > 20 && `open files ${filesBefore} before the load, ${filesAfter} after every client left`,
  ].filter(Boolean);
  if (failures.length > 0) {
    console.error(`soak: FAILED: ${failures.join("; ")}`);
    process.exit(1);
  }
  console.log("soak: passed");
  process.exit(0);
}

/** A Subscribe read for `lifeMs`, checked for gaps, then left. */
async function subscribeFor(client: Client<typeof StreamService>, g: number, fromOffset: number | undefined, check: OffsetCheck, lifeMs: number): Promise<void> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), lifeMs);
  try {
    const request = { streamName: STREAM, groupId: groupName(g), fromOffset: fromOffset === undefined ? undefined : BigInt(fromOffset) };
    for await (const response of client.subscribe(request, { signal: abort.signal })) applyResponse(check, response);
  } catch (error) {
    const failure = ConnectError.from(error);
    if (!(abort.signal.aborted && failure.code === Code.Canceled)) problem(`subscriber ended by ${failure.message}`);
  } finally {
    clearTimeout(timer);
  }
}

/** A stream-socket join read for `lifeMs`, checked for gaps, then closed. */
function streamSocketFor(url: string, g: number, fromOffset: number | undefined, check: OffsetCheck, lifeMs: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = new WebSocket(`${url.replace(/^http/, "ws")}/`, { perMessageDeflate: false });
    const timer = setTimeout(() => socket.close(), lifeMs);
    socket.on("open", () =>
      socket.send(JSON.stringify({ type: "join", data: { subscriptionId: "s", streamName: STREAM, groupId: groupName(g), fromOffset } })),
    );
    socket.on("message", (data) => {
      const message = JSON.parse(String(data)) as { offset?: number; event?: { type?: string } };
      const type = message.event?.type;
      if (message.offset === undefined) return;
      if (type === "sync") check.snapshot(message.offset);
      else if (type === "create" || type === "update" || type === "delete") check.change(message.offset);
      else if (type === "error") problem(`stream socket error event: ${JSON.stringify(message.event)}`);
    });
    socket.on("error", () => undefined);
    socket.on("close", (code) => {
      clearTimeout(timer);
      if (code !== 1000 && code !== 1005) problem(`stream socket closed with ${code}`);
      resolve();
    });
  });
}

/**
 * A Subscribe that reads its first message, then nothing for 20 to 40 s, then its backlog
 * for 2 s; returns how it ended: still served (it caught up) or the server's code.
 */
async function slowSubscribe(client: Client<typeof StreamService>, g: number): Promise<string> {
  const abort = new AbortController();
  const iterator = client.subscribe({ streamName: STREAM, groupId: groupName(g) }, { signal: abort.signal })[Symbol.asyncIterator]();
  try {
    await iterator.next();
    await pause(20_000 + random(20_000));
    const until = Date.now() + 2000;
    while (Date.now() < until) if ((await iterator.next()).done) return "Subscribe: ended without error";
    return "Subscribe: still served after the pause";
  } catch (error) {
    return `Subscribe: ${Code[ConnectError.from(error).code]}`;
  } finally {
    abort.abort();
  }
}

/** A stream socket that stops reading after its join for 20 to 40 s; returns its close code. */
function slowStreamSocket(url: string, g: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = new WebSocket(`${url.replace(/^http/, "ws")}/`, { perMessageDeflate: false });
    socket.on("open", () => {
      socket.send(JSON.stringify({ type: "join", data: { subscriptionId: "slow", streamName: STREAM, groupId: groupName(g) } }));
      // Reading stops at the TCP level: the server's writes pile up in its queue.
      (socket as unknown as { _socket: { pause(): void } })._socket.pause();
      void pause(20_000 + random(20_000)).then(() => {
        (socket as unknown as { _socket: { resume(): void } })._socket.resume();
        setTimeout(() => socket.terminate(), 2000);
      });
    });
    socket.on("error", () => undefined);
    socket.on("close", (code) => resolve(`stream socket: ${code === 1006 ? "held until we left" : `closed ${code}`}`));
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
