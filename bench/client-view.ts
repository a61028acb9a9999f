/**
 * Figures of the client library (`iii-stream/client`), in Node, over each transport:
 *
 * 1. Client CPU per applied change: a view of a 1,000-item group receives 1,000 changes/s
 *    (Sets of random items, from a writer in another process, against a server in a third
 *    one), and this process's CPU time (process.cpuUsage, user + system) over the window is
 *    divided by the changes the view applied.
 * 2. Time from a server restart to the view being live again: a file-adapter server is
 *    killed with SIGKILL and started again on the same port and data; from the moment the
 *    new server says it listens until every view's status is `live` again. Several samples,
 *    with the default backoff and with a short one.
 *
 *   npm run bench:client [-- --seconds 10 --samples 5]
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createStreamClient, type LiveView, type ReconnectOptions, type TransportName } from "../src/client/node.js";
import { spawnServer, type ServerProcess } from "../test/support/process.js";
import { numberFlag } from "./script-flags.js";

const TRANSPORTS: TransportName[] = ["connect", "grpc", "grpc-web", "websocket"];
const ITEMS = 1000;
const RATE = 1000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The writer process: `--writer URL SECONDS` sets random items of bench/g at RATE per
 * second, paced by the clock, with up to 256 calls in flight so that one slow reply does
 * not hold the rate back.
 */
async function writer(url: string, seconds: number): Promise<void> {
  const client = createStreamClient({ baseUrl: url });
  const started = Date.now();
  let written = 0;
  let inFlight = 0;
  while (Date.now() - started < seconds * 1000) {
    const due = Math.floor(((Date.now() - started) / 1000) * RATE);
    for (; written < due && inFlight < 256; written++) {
      inFlight++;
      void client
        .set("bench", "g", `i${Math.floor(Math.random() * ITEMS)}`, { n: written, text: "x".repeat(64) })
        .finally(() => inFlight--);
    }
    await sleep(2);
  }
  while (inFlight > 0) await sleep(5);
  console.error(`writer: ${written} Sets in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  client.close();
}

function runWriter(url: string, seconds: number): Promise<void> {
  const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--writer", url, String(seconds)], { stdio: "inherit" });
  return new Promise((resolve, reject) => child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`writer exited ${code}`)))));
}

async function cpuPerChange(seconds: number): Promise<void> {
  const server = await spawnServer(["--port", "0", "--adapter", "memory"]);
  try {
    const seed = createStreamClient({ baseUrl: server.url });
    for (let i = 0; i < ITEMS; i += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, k) => seed.set("bench", "g", `i${i + k}`, { n: 0, text: "x".repeat(64) })));
    }
    console.log(`\n1. Client CPU per applied change: a ${ITEMS}-item view receiving ${RATE} changes/s for ${seconds} s (server and writer in other processes)\n`);
    console.log("| transport | changes applied | changes/s | client CPU | CPU per change | view = List at the end |");
    console.log("|---|---|---|---|---|---|");
    for (const transport of TRANSPORTS) {
      const client = createStreamClient({ baseUrl: server.url, transport });
      const view = client.watchGroup("bench", "g");
      await view.ready();
      let changes = 0;
      view.on("change", () => changes++);
      const writing = runWriter(server.url, seconds + 1);
      await sleep(1000); // the writer's start-up is not measured
      const [startChanges, startCpu, startTime] = [changes, process.cpuUsage(), Date.now()];
      await sleep(seconds * 1000);
      const cpu = process.cpuUsage(startCpu);
      const elapsed = (Date.now() - startTime) / 1000;
      const applied = changes - startChanges;
      await writing;
      const offset = (await seed.delete("bench", "g", "never-written")).offset;
      while (view.offset !== offset) await sleep(20);
      const listed: string[] = [];
      for await (const page of seed.list("bench", "g")) for (const item of page) listed.push(`${item.itemId}:${item.revision}`);
      const equal = JSON.stringify(listed) === JSON.stringify([...view.items].map(([id, item]) => `${id}:${item.revision}`));
      const cpuMs = (cpu.user + cpu.system) / 1000;
      console.log(
        `| ${transport} | ${applied} | ${Math.round(applied / elapsed)} | ${Math.round(cpuMs)} ms (${((cpuMs / (elapsed * 1000)) * 100).toFixed(1)}% of a core) | ${((cpuMs * 1000) / applied).toFixed(1)} µs | ${equal ? "yes" : "NO"} |`,
      );
      client.close();
    }
    seed.close();
  } finally {
    server.child.kill("SIGKILL");
    await server.exited;
  }
}

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

function whenAll(views: LiveView[], status: string): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (views.every((view) => view.status === status)) resolve();
      else setTimeout(check, 1);
    };
    check();
  });
}

async function restartToLive(samples: number, label: string, reconnect: ReconnectOptions | undefined): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "iii-stream-bench-client-"));
  const port = await freePort();
  const args = ["--port", String(port), "--data-dir", join(dir, "data")];
  let server: ServerProcess = await spawnServer(args);
  const baseUrl = `http://127.0.0.1:${port}`;
  const writer = createStreamClient({ baseUrl });
  for (let i = 0; i < 100; i++) await writer.set("restart", "g", `i${i}`, { n: i });
  writer.close();
  const clients = TRANSPORTS.map((transport) => createStreamClient({ baseUrl, transport, reconnect }));
  const views = clients.map((client) => client.watchGroup("restart", "g"));
  const times = new Map<TransportName, number[]>(TRANSPORTS.map((transport) => [transport, []]));
  try {
    await Promise.all(views.map((view) => view.ready()));
    for (let sample = 0; sample < samples; sample++) {
      server.child.kill("SIGKILL");
      await server.exited;
      await whenAll(views, "reconnecting");
      server = await spawnServer(args);
      const up = Date.now();
      await Promise.all(
        views.map(async (view, index) => {
          await whenAll([view], "live");
          times.get(TRANSPORTS[index])!.push(Date.now() - up);
        }),
      );
    }
  } finally {
    for (const client of clients) client.close();
    server.child.kill("SIGKILL");
    await server.exited;
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\n2. Server restart to view live again (${label}; ${samples} samples; from the new server's "listening" line)\n`);
  console.log("| transport | median | worst | samples (ms) |");
  console.log("|---|---|---|---|");
  for (const [transport, list] of times) {
    const sorted = [...list].sort((a, b) => a - b);
    console.log(`| ${transport} | ${sorted[Math.floor(sorted.length / 2)]} ms | ${sorted.at(-1)} ms | ${list.join(", ")} |`);
  }
}

if (process.argv[2] === "--writer") {
  await writer(process.argv[3], Number(process.argv[4]));
} else {
  const seconds = numberFlag("seconds", 10);
  const samples = numberFlag("samples", 5);
  console.log(`iii-stream client figures: Node ${process.version}, ${new Date().toISOString()}`);
  await cpuPerChange(seconds);
  await restartToLive(samples, "default backoff: 250 ms initial, 10 s max, factor 2", undefined);
  await restartToLive(samples, "short backoff: 50 ms initial, 1 s max", { initialDelayMs: 50, maxDelayMs: 1000 });
}
