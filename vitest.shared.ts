// Shared vitest settings: tests run on TypeScript sources through the `@vfio-ts/source` export condition,
// so no package has to be built before its dependents' tests run.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['@vfio-ts/source'] },
  ssr: { resolve: { conditions: ['@vfio-ts/source'] } },
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
