import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration tests start real PyTorch workers; two cores, so run files one at a time.
    fileParallelism: false,
    // Tests marked concurrent (test/integration/faults.test.ts) run three at a time.
    maxConcurrency: 3,
  },
});
