import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/** `npm run test:browser`: the tests that drive a real Chromium, kept out of `npm test`. */
export default defineConfig({
  root: fileURLToPath(new URL("../..", import.meta.url)),
  test: {
    include: ["test/browser/**/*.browser-test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
