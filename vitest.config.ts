import { defineConfig } from 'vitest/config';

// Three tiers (see ../shared/DESIGN.md "Testing tiers"):
// - unit: pure functions and the storage engine on real temp files; no processes.
// - server: the log server as a real child process (API contract, crash tests).
// - integration: a real kube-apiserver + etcd + kube-controller-manager and the
//   node agent, started once by the global setup; fails loudly if they cannot start.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'server',
          include: ['test/server/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/integration/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          // One shared control plane on a 2-core machine: keep files serial so
          // timing-sensitive tests (restarts, back-off) are not starved.
          fileParallelism: false,
        },
      },
    ],
  },
});
