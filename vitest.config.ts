import { defineConfig } from "vitest/config";

// Each workspace package exports its TypeScript sources under this condition
// (see the "exports" map in its package.json), so tests import sibling
// packages by name and run against `src/` with no build step.
const sourceConditions = ["@dovetail/source"];

export default defineConfig({
  // Vitest appends the server defaults ("node", "development|production") to
  // both lists below. Tests run in Vite's `ssr` environment, which reads
  // `ssr.resolve.conditions`, not `resolve.conditions`; Vitest also passes
  // `ssr.resolve.conditions` to its worker processes as `--conditions`, so
  // modules loaded by Node directly resolve the same way.
  resolve: {
    conditions: sourceConditions,
  },
  ssr: {
    resolve: {
      conditions: sourceConditions,
    },
  },
  test: {
    include: ["packages/*/test/**/*.test.ts", "apps/*/test/**/*.test.ts", "examples/**/*.test.ts", "e2e/**/*.test.ts"],
    environment: "node",
    pool: "forks",
    fileParallelism: true,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
