import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";

/** The shared Redis of this machine (CI exports REDIS_URL). */
export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** A key prefix no other test file or run uses: tests on the shared Redis never meet. */
export function uniquePrefix(label: string): string {
  return `iii-stream-test:${label}:${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}:`;
}

/** A plain connection for checks a test makes behind the adapter's back. Quit it. */
export function redisClient(url: string = REDIS_URL): Redis {
  return new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: false });
}

/** Deletes every key under `prefix` (on every master of a cluster). Test cleanup only: it scans. */
export async function deleteKeys(prefix: string, url: string = REDIS_URL): Promise<void> {
  const probe = redisClient(url);
  try {
    const clusterMode = /^cluster_enabled:1/m.test(await probe.info("cluster"));
    const nodes = clusterMode ? await masterUrls(probe) : [url];
    for (const nodeUrl of nodes) {
      const node = clusterMode ? redisClient(nodeUrl) : probe;
      try {
        await deleteOnNode(node, prefix);
      } finally {
        if (node !== probe) await node.quit();
      }
    }
  } finally {
    await probe.quit();
  }
}

async function deleteOnNode(node: Redis, prefix: string): Promise<void> {
  // Glob characters in the prefix are escaped so that MATCH takes them literally.
  const pattern = `${prefix.replace(/[*?[\]\\]/g, "\\$&")}*`;
  let cursor = "0";
  do {
    const [next, keys] = await node.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    cursor = next;
    // One key per DEL: on a cluster node, keys of several slots cannot go together.
    for (const key of keys) await node.del(key);
  } while (cursor !== "0");
}

async function masterUrls(node: Redis): Promise<string[]> {
  const lines = ((await node.call("CLUSTER", "NODES")) as string).trim().split("\n");
  return lines
    .map((line) => line.split(" "))
    .filter((fields) => fields[2].includes("master"))
    .map((fields) => `redis://${fields[1].split("@")[0]}`);
}

/** A free loopback port whose +10000 neighbour (a cluster node's bus port) is free too. */
async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 35_000);
    if ((await isFree(port)) && (await isFree(port + 10_000))) return port;
  }
  throw new Error("no free port pair found");
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

export interface RedisServer {
  port: number;
  url: string;
  /** Kills the process (SIGKILL: nothing is flushed that was not already). */
  kill(): Promise<void>;
  /** Starts it again on the same port and data directory. */
  restart(): Promise<void>;
  /** Kills it for good and removes its directory. */
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  /** Extra redis-server arguments. */
  args?: string[];
  /**
   * Keep data across kill/restart: append-only file, fsync on every write, so that
   * an acknowledged write survives a SIGKILL. Default false.
   */
  durable?: boolean;
  /** Clients must authenticate with this password (`requirepass`). Default none. */
  password?: string;
}

/** Runs a throwaway `redis-server` on a spare loopback port. Stop it in afterAll. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "iii-stream-redis-"));
  const persistence = options.durable ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"];
  const auth = options.password !== undefined ? ["--requirepass", options.password] : [];
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--dir", dir, ...persistence, ...auth, ...(options.args ?? [])];
  let child: ChildProcess | undefined;
  const launch = async () => {
    child = spawn("redis-server", args, { stdio: "ignore" });
    await waitForPing(port, options.password);
  };
  const kill = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill("SIGKILL");
    await exited;
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    restart: launch,
    stop: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPing(port: number, password?: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new Redis({ port, host: "127.0.0.1", password, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    client.on("error", () => undefined);
    try {
      await client.connect();
      if ((await client.ping()) === "PONG") return;
    } catch {
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      client.disconnect();
    }
  }
}

export interface RedisCluster {
  nodes: RedisServer[];
  /** Any node's URL: the adapter discovers the others. */
  url: string;
  stop(): Promise<void>;
}

/** Starts three masters with `--cluster-enabled yes` and joins them with `redis-cli --cluster create`. */
export async function startRedisCluster(): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
  };
  try {
    for (let i = 0; i < 3; i++) {
      nodes.push(await startRedisServer({ args: ["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"] }));
    }
    await run("redis-cli", [
      "--cluster",
      "create",
      ...nodes.map((node) => `127.0.0.1:${node.port}`),
      "--cluster-replicas",
      "0",
      "--cluster-yes",
    ]);
    await waitForClusterOk(nodes);
  } catch (error) {
    await stop();
    throw error;
  }
  return { nodes, url: nodes[0].url, stop };
}

async function waitForClusterOk(nodes: RedisServer[], timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const clients = nodes.map((node) => redisClient(node.url));
  try {
    for (;;) {
      const infos = await Promise.all(clients.map((client) => client.call("CLUSTER", "INFO") as Promise<string>));
      // Every node must also know every other one, or a client may see a partial map.
      const known = `cluster_known_nodes:${nodes.length}`;
      if (infos.every((info) => info.includes("cluster_state:ok") && info.includes(known))) return;
      if (Date.now() > deadline) throw new Error("the Redis cluster did not reach cluster_state:ok");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await Promise.all(clients.map((client) => client.quit()));
  }
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited with ${code}:\n${output}`))));
  });
}
