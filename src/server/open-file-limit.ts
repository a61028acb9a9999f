import { readdirSync, readFileSync } from "node:fs";

/**
 * The process's limit on open files, and what the connection caps need of it. Every
 * connection is a file descriptor; so are the store's files, Redis connections, the
 * sockets of remote function calls and the listener. When the limit is reached, Node
 * does not fail or report anything: accept() fails with EMFILE inside libuv and new
 * connections wait unanswered in the kernel's backlog until a descriptor is freed.
 * So the server warns at start when its caps do not fit the limit, and at runtime
 * when the descriptors in use approach it.
 */

/**
 * The share of the open-file limit that connections may take by default; the rest is
 * for the store, Redis, outgoing calls and Node itself.
 */
export const CONNECTION_SHARE_OF_FILES = 0.8;

/** How to raise the soft limit, for the messages that ask for it. */
const HOW_TO_RAISE = (files: number) =>
  `raise the limit to at least ${files} (\`ulimit -n ${files}\` in the shell that starts the server, ` +
  `LimitNOFILE=${files} in its systemd unit, or \`docker run --ulimit nofile=${files}:${files}\`)`;

/** The soft limit on open files of this process (Linux); undefined where unknown or unlimited. */
export function openFileLimit(): number | undefined {
  try {
    const line = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return line ? Number(line[1]) : undefined;
  } catch {
    // Not Linux: nothing to check against.
    return undefined;
  }
}

/** Open files `maxConnections` connections need, with the share left for everything else. */
export function filesNeeded(maxConnections: number): number {
  return Math.ceil(maxConnections / CONNECTION_SHARE_OF_FILES);
}

/**
 * A warning for the start-up log when the connection cap does not fit the open-file
 * limit, or when the limit lowered the default cap; undefined when all is well.
 */
export function openFileLimitWarning(maxConnections: number, defaultMaxConnections: number, fileLimit = openFileLimit()): string | undefined {
  if (fileLimit === undefined) return undefined;
  const needed = filesNeeded(maxConnections);
  if (needed > fileLimit) {
    return (
      `the soft limit on open files is ${fileLimit}, below the ${needed} that max_connections (${maxConnections}) needs with the ` +
      `store, Redis and outgoing calls: once it is reached, new connections wait unanswered; ${HOW_TO_RAISE(needed)}, or lower max_connections`
    );
  }
  if (maxConnections < defaultMaxConnections && maxConnections === Math.floor(fileLimit * CONNECTION_SHARE_OF_FILES)) {
    const full = filesNeeded(defaultMaxConnections);
    return (
      `the soft limit on open files is ${fileLimit}, so the server accepts at most ${maxConnections} connections ` +
      `instead of ${defaultMaxConnections}; ${HOW_TO_RAISE(full)}`
    );
  }
  return undefined;
}

/** Descriptors open in this process now (Linux); undefined where unknown. */
function openFiles(): number | undefined {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch (error) {
    // Reading the directory takes a descriptor too: failing for want of one is the answer.
    const code = (error as NodeJS.ErrnoException).code;
    return code === "EMFILE" || code === "ENFILE" ? Infinity : undefined;
  }
}

/**
 * Watches the descriptors in use as connections come, and warns once per burst when they
 * approach the limit: at 90% of it, again only after they fell back below 75%. Counting
 * descriptors reads a directory, so it is done only while connections hold at least half
 * the limit, and at most once a second.
 */
export class OpenFileWatch {
  private near = false;
  private lastCheckMs = 0;
  /** A check skipped by the once-a-second rule runs later: a burst may end right after it. */
  private deferred: NodeJS.Timeout | undefined;
  private latest = 0;

  constructor(
    private readonly warn: (message: string) => void,
    private readonly fileLimit: number | undefined = openFileLimit(),
    private readonly countOpenFiles: () => number | undefined = openFiles,
  ) {}

  /** Called with the number of open connections whenever one opens or closes. */
  check(connections: number, now = Date.now()): void {
    const limit = this.fileLimit;
    this.latest = connections;
    if (limit === undefined || (connections < limit / 2 && !this.near)) return;
    if (now - this.lastCheckMs < 1000) {
      this.deferred ??= setTimeout(() => {
        this.deferred = undefined;
        this.check(this.latest);
      }, 1000 - (now - this.lastCheckMs)).unref();
      return;
    }
    this.lastCheckMs = now;
    const counted = this.countOpenFiles();
    if (counted === undefined) return;
    // The count includes the descriptor that reads it.
    const open = Math.min(counted, limit);
    if (!this.near && open >= limit * 0.9) {
      this.near = true;
      this.warn(
        `${open} of the ${limit} files this process may open are in use (${connections} connections): at the limit, new ` +
          `connections wait unanswered while open ones are still served; ${HOW_TO_RAISE(filesNeeded(connections * 2))}`,
      );
    } else if (this.near && open < limit * 0.75) this.near = false;
  }

  /** Drops a deferred check (the listener is closing). */
  stop(): void {
    clearTimeout(this.deferred);
  }
}
