import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import type { RedisClient } from "./scripts.js";

export interface ConnectionOptions {
  /** redis://[user:password@]host:port[/db] (rediss:// for TLS); on Cluster, any one node. */
  url: string;
  /** How long one command may take before it fails (UNAVAILABLE). */
  commandTimeoutMs: number;
  /** How long connecting at startup may take. */
  connectTimeoutMs: number;
}

/**
 * The two connections of one adapter. Commands and scripts run on `commands`; the
 * shard-channel subscriptions live on `subscriber` alone, so a burst of messages
 * never queues behind a slow command or the other way round.
 */
export interface RedisConnections {
  readonly commands: RedisClient;
  readonly subscriber: RedisClient;
  readonly isCluster: boolean;
  /** Subscriptions were dropped with the subscriber connection. */
  onSubscriberLost(callback: () => void): void;
  /** The subscriber connection is back: subscriptions must be renewed, missed messages replayed. */
  onSubscriberBack(callback: () => void): void;
  subscriberReady(): boolean;
  ready(): boolean;
  close(): Promise<void>;
}

/**
 * Settings that keep the adapter from ever applying a write twice or acknowledging
 * one that was not stored: a command in flight when its connection drops may or may
 * not have run, so it fails instead of being resent (a resent compare-and-set would
 * make the engine recompute an increment and apply it again), and a command issued
 * while Redis is unreachable fails at once instead of waiting in a queue. The
 * connection itself keeps reconnecting, at most a second apart.
 */
function nodeOptions(options: ConnectionOptions): RedisOptions {
  return {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    enableOfflineQueue: false,
    // Renewed by the adapter, which then replays what was missed from history.
    autoResubscribe: false,
    retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: options.connectTimeoutMs,
  };
}

/** Connects to a standalone Redis or, when the node says cluster mode is on, to its Cluster. */
export async function openConnections(options: ConnectionOptions): Promise<RedisConnections> {
  const probe = new Redis(options.url, nodeOptions(options));
  // connect() only says "Connection is closed."; the socket error says why.
  let cause: Error | undefined;
  probe.on("error", (error: Error) => (cause ??= error));
  try {
    await probe.connect();
    const info = await probe.info("cluster");
    if (!/^cluster_enabled:1/m.test(info)) return await standalone(probe);
  } catch (error) {
    probe.disconnect();
    throw cause ?? error;
  }
  probe.disconnect();
  return cluster(options);
}

async function standalone(commands: Redis): Promise<RedisConnections> {
  const subscriber = commands.duplicate();
  // Failures surface through commands and through `status`; without a listener,
  // ioredis would print every reconnect attempt.
  subscriber.on("error", () => undefined);
  // Listeners are attached after this first connect, so every "ready" they see is a reconnect.
  await subscriber.connect();
  return {
    commands,
    subscriber,
    isCluster: false,
    onSubscriberLost: (callback) => subscriber.on("close", callback),
    onSubscriberBack: (callback) => subscriber.on("ready", callback),
    subscriberReady: () => subscriber.status === "ready",
    ready: () => commands.status === "ready" && subscriber.status === "ready",
    close: async () => {
      await Promise.all([quit(commands), quit(subscriber)]);
    },
  };
}

async function cluster(options: ConnectionOptions): Promise<RedisConnections> {
  const url = new URL(options.url);
  const redisOptions: RedisOptions = {
    ...nodeOptions(options),
    // Node connections open lazily, on the first command for their slots; without a
    // queue, concurrent first commands would fail while it connects. A queued command
    // has not been sent, so sending it later never runs it twice; the command
    // timeout still bounds the wait while a node is unreachable.
    enableOfflineQueue: true,
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    tls: url.protocol === "rediss:" ? {} : undefined,
  };
  const clusterOptions: ClusterOptions = {
    lazyConnect: true,
    redisOptions,
    // A command whose node connection closed may have run; retrying it after a
    // failover could apply a write twice (MOVED, ASK and TRYAGAIN, which mean "not
    // run", are still followed).
    retryDelayOnFailover: 0,
    clusterRetryStrategy: (attempt) => Math.min(100 * attempt, 2000),
  };
  const startNode = [{ host: url.hostname, port: Number(url.port || 6379) }];
  const commands = new Cluster(startNode, clusterOptions);
  const subscriber = new Cluster(startNode, { ...clusterOptions, shardedSubscribers: true });
  for (const client of [commands, subscriber]) client.on("error", () => undefined);
  try {
    await Promise.all([commands.connect(), subscriber.connect()]);
  } catch (error) {
    commands.disconnect();
    subscriber.disconnect();
    throw error;
  }
  return {
    commands,
    subscriber,
    isCluster: true,
    onSubscriberLost: (callback) => subscriber.on("-subscriber", callback),
    onSubscriberBack: (callback) => subscriber.on("subscribersReady", callback),
    subscriberReady: () => subscriber.status === "ready",
    ready: () => commands.status === "ready" && subscriber.status === "ready",
    close: async () => {
      await Promise.all([quit(commands), quit(subscriber)]);
    },
  };
}

/** QUIT when connected (replies in flight arrive first), otherwise just drop the socket. */
async function quit(client: RedisClient): Promise<void> {
  if (client.status === "ready") {
    await client.quit().catch(() => client.disconnect());
  } else {
    client.disconnect();
  }
}
