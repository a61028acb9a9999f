/**
 * The line of a server's output that says it died (V8's heap limit, an abort), if there
 * is one: an old server may run out of heap in the memory scenarios, and its clients
 * only see connections close.
 */
export function fatalError(output: string): string | undefined {
  return /^.*(FATAL ERROR|heap out of memory|Aborted).*$/m.exec(output)?.[0].trim();
}
