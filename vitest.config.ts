import { defineConfig } from 'vitest/config';

// Three tiers (docs/architecture.md): unit is pure (the command runner refuses to run),
// integration uses real tools, loop devices and a loopback server as root, vm boots QEMU.
export default defineConfig({
  test: {
    // Vitest's default on a 2-core machine is one worker. Two: the unit tier's files and the vm
    // tier's guests use both cores; the integration tier stays on one fork (below).
    maxWorkers: 2,
    minWorkers: 1,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          env: { FERRY_TEST_TIER: 'unit' },
          // A bound, not a speed check: tests that build a whole server app (app-fixture.ts) take
          // 2-4 s on a 2-core machine under load, over vitest's 5-s default (a CI flake seen here).
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          env: { FERRY_TEST_TIER: 'integration' },
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // Loop devices and ports are machine-wide: files run one after another.
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
        },
      },
      {
        test: {
          name: 'vm',
          include: ['test/vm/**/*.test.ts'],
          env: { FERRY_TEST_TIER: 'vm' },
          testTimeout: 1_200_000,
          hookTimeout: 1_200_000,
          // Two files at a time (maxWorkers above): a TCG guest keeps one host core busy, and the
          // machines have two. Guests, servers, ports and data directories are per file (free
          // ports, mkdtemp); the caches they share are written under per-process names and
          // renamed into place (test/vm/kernel.ts, kvm.ts).
          pool: 'forks',
        },
      },
    ],
  },
});
