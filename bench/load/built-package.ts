import { existsSync } from "node:fs";

/** The public API of iii-stream (src/index.ts), as a program embedding it sees it. */
export type Package = typeof import("../../src/index.js");

/**
 * The package as the CLI runs it: the compiled dist/ (`npm run bench` builds it first),
 * not src/ through the TypeScript loader, so that a server started here runs the same
 * code as bin/iii-stream.mjs, and the loader's transpiling is not measured with it.
 */
export async function loadBuiltPackage(): Promise<Package> {
  const entry = new URL("../../dist/src/index.js", import.meta.url);
  if (!existsSync(entry)) throw new Error("dist/ is missing: run `npm run build` (`npm run bench` does it first)");
  return (await import(entry.href)) as Package;
}
