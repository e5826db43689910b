import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each file in its own process: tfjs keeps one global engine and backend per process.
    pool: 'forks',
    // Two files at a time on 2 cores: much of a CLI test is a child process starting up (≈1.7 s of
    // tfjs import each) or waiting on one, so two overlap well — 539 s against 707 s one at a time.
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
