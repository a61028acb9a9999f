import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The version in this package's package.json, read when asked rather than compiled in,
 * so that a build can never report a version other than the one installed. The file is
 * the nearest package.json above this module: dist/src/server/ once built, src/server/ under tsx.
 */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, "package.json");
    if (existsSync(candidate)) {
      const manifest = JSON.parse(readFileSync(candidate, "utf8")) as { version?: unknown };
      if (typeof manifest.version !== "string") throw new Error(`${candidate} has no version`);
      return manifest.version;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error("no package.json above the iii-stream module");
    dir = parent;
  }
}
