import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Servers, child processes and Redis make some tests slow on a 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Files run in parallel processes; each test file uses its own ports, data
    // directories and Redis key prefix.
    pool: "forks",
    maxWorkers: 2,
  },
});
