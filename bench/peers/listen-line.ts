import type { AddressInfo } from "node:net";
import type net from "node:net";

/**
 * Prints the line the suite waits for before it loads a server: the same shape as
 * iii-stream's own ("listening on <url> (...)"), so one parser serves every system.
 */
export function announceListening(server: net.Server, name: string): void {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${name} listening on http://127.0.0.1:${port} (peer)\n`);
}

/** The port from `--port N` (default 0: a free one). */
export function portArgument(argv: string[] = process.argv.slice(2)): number {
  const index = argv.indexOf("--port");
  return index >= 0 ? Number(argv[index + 1]) : 0;
}
