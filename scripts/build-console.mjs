/**
 * Builds the web console (src/console) into dist/console: one script and one style sheet,
 * each named by a hash of its content so that the server may let browsers cache them for
 * good, and the page that names them. Runs in `npm run build`, so `npm install` (prepare)
 * and CI's fresh clone have it; nothing is fetched from the network, here or in the page.
 */
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const source = join(root, "src/console");
const out = join(root, "dist/console");

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const result = await build({
  entryPoints: [join(source, "main.ts"), join(source, "console.css")],
  outdir: out,
  entryNames: "[name]-[hash]",
  bundle: true,
  minify: true,
  format: "esm",
  platform: "browser",
  // The browser entry of the client library (package.json's "browser" export condition).
  conditions: ["browser"],
  target: ["chrome110", "firefox110", "safari16"],
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
});
const outputs = Object.keys(result.metafile.outputs).map((file) => basename(file));
const script = outputs.find((file) => /^main-.*\.js$/.test(file));
const styles = outputs.find((file) => /^console-.*\.css$/.test(file));
if (!script || !styles) throw new Error(`the console build produced ${outputs.join(", ")}`);
const page = readFileSync(join(source, "index.html"), "utf8").replace("{{script}}", script).replace("{{styles}}", styles);
writeFileSync(join(out, "index.html"), page);
copyFileSync(join(source, "icon.svg"), join(out, "icon.svg"));
