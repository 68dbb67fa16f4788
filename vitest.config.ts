import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts', 'adapters/**/*.test.ts', 'setup/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Docker-backed suites share one engine and one agent image; running files one at a time keeps
    // container counts and timings predictable on a 2-core machine.
    fileParallelism: false,
    reporters: ['default'],
  },
});
