import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    // Native addons need real processes, not worker threads.
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
})
