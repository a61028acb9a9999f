#!/usr/bin/env node
// Runs the compiled CLI from dist/, which `npm install` (the prepare script) and `npm run build` produce.
import { existsSync } from "node:fs";

const cli = new URL("../dist/src/cli/cli.js", import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write("iii-stream: dist/ is missing; run `npm run build` in the package directory first\n");
  process.exit(1);
}
await import(cli.href);
