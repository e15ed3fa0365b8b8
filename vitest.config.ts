import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    // libp2p 3 calls Promise.withResolvers (Node 22+): polyfill before any test module loads.
    setupFiles: ['./src/polyfill.ts'],
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // tfjs backends and libp2p nodes are heavy; forks keep each file's state isolated.
    pool: 'forks',
    maxWorkers: 2,
  },
})
