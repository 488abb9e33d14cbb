import { defineConfig } from 'vitest/config';

// Four tiers (see ../shared/DESIGN.md "Testing tiers"):
// - unit: pure functions and the storage engine on real temp files; no processes.
// - server: the log server as a real child process (API contract, crash tests).
// - integration: a real kube-apiserver + etcd + kube-controller-manager and the
//   node agent, started once by the global setup; fails loudly if they cannot start.
// - container: the project image (Dockerfile) under testcontainers.
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
      {
        test: {
          // The project image (Dockerfile) under testcontainers; the global setup
          // builds it with scripts/build-image.sh and fails loudly without Docker.
          name: 'container',
          include: ['test/container/**/*.test.ts'],
          globalSetup: ['test/container/global-setup.ts'],
          // Ryuk's image cannot be pulled here; the helpers remove their containers.
          env: { TESTCONTAINERS_RYUK_DISABLED: 'true' },
          testTimeout: 300_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          // A real node (kubelet + containerd, dev/node/) running the README's install
          // verbatim; Linux + root; the global setup builds the binaries and the image.
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/e2e/global-setup.ts'],
          testTimeout: 420_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
