import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLog } from "../src/core/log.js";
import { startServer, type RunningServer } from "./support/server.js";
import { GroupView, json, ViewReader, waitFor } from "./support/subscribe-view.js";
import { openSocket, wsUrl } from "./support/ws-client.js";
import { readmeBlocks } from "./support/readme-blocks.js";
import { PROJECT_ROOT } from "./support/process.js";
import { freePort } from "./support/shell.js";

/**
 * A real Prometheus (Debian's package) scrapes the server every second while a scripted
 * workload runs; what it stored is read back through its HTTP query API.
 */
const PROMETHEUS = "/usr/bin/prometheus";
/** CI installs it (.ci/run), so there a missing one is a failure, not a skip. */
const required = process.env.CI === "true";
const skip = !existsSync(PROMETHEUS) && !required;
if (skip) console.warn(`metrics-prometheus.test.ts skipped: ${PROMETHEUS} is missing (install Debian's prometheus package)`);

const SET = "iii.stream.v1.StreamService/Set";
/** Long enough for a loaded machine: Prometheus scrapes every second, so a value shows within a few. */
const SCRAPE_WAIT_MS = 30_000;

interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

describe.skipIf(skip)("a real Prometheus scraping the server", () => {
  let running: RunningServer;
  let prometheus: ChildProcess | undefined;
  let prometheusUrl: string;
  let dir: string;
  let output = "";

  /** The instant vector `query` evaluates to now, through Prometheus's HTTP API. */
  async function query(promql: string): Promise<VectorSample[]> {
    const res = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await res.json()) as { status: string; error?: string; data: { resultType: string; result: VectorSample[] } };
    if (body.status !== "success") throw new Error(`query ${promql} failed: ${body.error}`);
    return body.data.result;
  }

  /** The single value of `promql` (undefined while Prometheus has no sample for it). */
  async function valueNow(promql: string): Promise<number | undefined> {
    const result = await query(promql);
    if (result.length > 1) throw new Error(`${promql} has ${result.length} series: ${JSON.stringify(result)}`);
    return result.length === 0 ? undefined : Number(result[0].value[1]);
  }

  /** Waits until Prometheus reports `expected` for `promql`; fails with what it last reported. */
  async function expectEventually(promql: string, expected: number): Promise<void> {
    let last: number | undefined;
    try {
      await waitFor(async () => (last = await valueNow(promql)) === expected, `${promql} == ${expected}`, SCRAPE_WAIT_MS);
    } catch {
      throw new Error(`Prometheus reports ${last} for ${promql}, expected ${expected}\n${output.slice(-2000)}`);
    }
  }

  beforeAll(async () => {
    if (!existsSync(PROMETHEUS)) throw new Error(`CI=true but ${PROMETHEUS} is missing: .ci/run installs Debian's prometheus package`);
    running = await startServer({ log: silentLog, queueLimits: { maxMessages: 16 } });
    dir = await mkdtemp(join(tmpdir(), "iii-stream-prometheus-"));
    const config = join(dir, "prometheus.yml");
    // The README's configuration, its target moved to this server, scraping every second.
    const scrapeConfig = readmeBlocks(readFileSync(join(PROJECT_ROOT, "README.md"), "utf8")).find((b) => b.id === "metrics-scrape-config");
    if (!scrapeConfig) throw new Error("README.md has no block marked metrics-scrape-config");
    expect(scrapeConfig.text).toContain("127.0.0.1:3112");
    const target = new URL(running.url).host;
    await writeFile(config, `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n${scrapeConfig.text.replace("127.0.0.1:3112", target)}`);
    const port = await freePort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    prometheus = spawn(
      PROMETHEUS,
      [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    prometheus.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    prometheus.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<never>((_, reject) => prometheus!.once("exit", (code) => reject(new Error(`prometheus exited with ${code}:\n${output}`))));
    exited.catch(() => undefined);
    await Promise.race([
      waitFor(async () => (await fetch(`${prometheusUrl}/-/ready`).catch(() => undefined))?.status === 200, "Prometheus to be ready", SCRAPE_WAIT_MS),
      exited,
    ]);
    // The target is up: Prometheus scraped the server at least once.
    await expectEventually(`up{job="iii-stream"}`, 1);
  }, 60_000);

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      const gone = new Promise((resolve) => prometheus!.once("exit", resolve));
      prometheus.kill("SIGKILL");
      await gone;
    }
    await running?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("stores requests by code after a scripted mix of good and bad calls", async () => {
    const connect = running.client("connect-json-h1");
    for (let i = 0; i < 5; i++) await connect.set({ streamName: "prom", groupId: "g", itemId: `i${i}`, data: json(i) });
    for (let i = 0; i < 3; i++) {
      await expect(running.client("grpc").set({ streamName: "", groupId: "g", itemId: "i", data: json(1) })).rejects.toMatchObject({ code: Code.InvalidArgument });
    }
    await expectEventually(`iii_stream_rpc_requests_total{method="${SET}", code="ok", protocol="connect"}`, 5);
    await expectEventually(`iii_stream_rpc_requests_total{method="${SET}", code="invalid_argument", protocol="grpc"}`, 3);
    await expectEventually(`sum(iii_stream_rpc_duration_seconds_count{method="${SET}"})`, 8);
    await expectEventually(`iii_stream_writes_total{op="set"}`, 5);
    await expectEventually(`iii_stream_store_ready`, 1);
    expect(await valueNow(`process_resident_memory_bytes{job="iii-stream"}`)).toBeGreaterThan(0);
  });

  it("stores the subscription gauge going up and down, and the ends by reason", async () => {
    const client = running.client("grpc");
    const readers = [0, 1, 2].map(() => new ViewReader(client, { streamName: "updown", groupId: "g" }, new GroupView(undefined, true)));
    await expectEventually(`iii_stream_subscriptions{transport="subscribe"}`, 3);
    for (const reader of readers) await reader.leave();
    await expectEventually(`iii_stream_subscriptions{transport="subscribe"}`, 0);
    // Both states are in Prometheus's memory, not only the last one.
    expect(await valueNow(`max_over_time(iii_stream_subscriptions{transport="subscribe"}[5m])`)).toBe(3);
    await expectEventually(`iii_stream_subscriptions_ended_total{transport="subscribe", reason="client"}`, 3);
    await expectEventually(`iii_stream_deliveries_total{transport="subscribe"}`, 3);
  });

  it("stores a slow consumer's end", async () => {
    const slow = await openSocket(wsUrl(running.url, "/"));
    slow.ws.pause();
    slow.send({ type: "join", data: { subscriptionId: "slow", streamName: "slow", groupId: "g" } });
    await expectEventually(`iii_stream_websocket_connections{protocol="stream_socket"}`, 1);
    await expectEventually(`iii_stream_subscriptions{transport="stream_socket"}`, 1);
    const big = randomBytes(24_000).toString("base64");
    const client = running.client();
    for (let i = 0; i < 2000 && running.server.stats().subscriptions > 0; i++) {
      await client.set({ streamName: "slow", groupId: "g", itemId: `i${i % 8}`, data: json(big) });
    }
    await expectEventually(`iii_stream_subscriptions_ended_total{transport="stream_socket", reason="slow_consumer"}`, 1);
    await expectEventually(`iii_stream_subscriptions{transport="stream_socket"}`, 0);
    slow.ws.resume();
    await slow.closed;
    await expectEventually(`iii_stream_websocket_connections{protocol="stream_socket"}`, 0);
  });
});
