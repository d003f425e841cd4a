import { defineConfig } from 'vitest/config';

// One vitest project per package plus the cross-package suite in test/.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'decoder', include: ['packages/decoder/test/**/*.test.ts'] } },
      { test: { name: 'rewriter', include: ['packages/rewriter/test/**/*.test.ts'] } },
      { test: { name: 'runtime', include: ['packages/runtime/test/**/*.test.ts'] } },
      { test: { name: 'cli', include: ['packages/cli/test/**/*.test.ts'] } },
      { test: { name: 'cross', include: ['test/**/*.test.ts'], testTimeout: 600_000 } },
    ],
  },
});
