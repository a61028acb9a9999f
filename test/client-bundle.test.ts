/**
 * `iii-stream/client` as a package user gets it (the built dist/, through package.json
 * "exports"): a browser bundle (esbuild, platform browser) takes the browser entry and
 * nothing of Node's (no node: module, no connect-node, no ws); Node takes the Node entry.
 */
import { build } from "esbuild";
import { expect, it } from "vitest";
import { PROJECT_ROOT } from "./support/process.js";

async function bundleInputs(platform: "browser" | "node"): Promise<string[]> {
  const result = await build({
    stdin: { contents: 'export { createStreamClient, StreamError } from "iii-stream/client";', resolveDir: PROJECT_ROOT, loader: "ts" },
    bundle: true,
    write: false,
    format: "esm",
    platform,
    metafile: true,
    logLevel: "silent",
    external: platform === "node" ? ["@connectrpc/*", "@bufbuild/*", "ws"] : [],
  });
  const imports = Object.values(result.metafile.inputs).flatMap((input) => input.imports.map((imported) => imported.path));
  return [...Object.keys(result.metafile.inputs), ...imports];
}

it("bundles for browsers without any Node module", async () => {
  const inputs = await bundleInputs("browser");
  expect(inputs).toContain("dist/src/client/browser.js");
  expect(inputs).toContain("node_modules/@connectrpc/connect-web/dist/esm/index.js");
  expect(inputs.filter((path) => /^node:|^(http|http2|net|tls|fs|stream|zlib)$|connect-node|node_modules\/ws\/|dist\/src\/(?!client\/|core\/(errors|json|update-ops)\.js)/.test(path))).toEqual([]);
});

it("gives Node the Node entry", async () => {
  const inputs = await bundleInputs("node");
  expect(inputs).toContain("dist/src/client/node.js");
  expect(inputs).not.toContain("dist/src/client/browser.js");
});
