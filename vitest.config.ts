import { defineConfig } from 'vitest/config';

// Three tiers (docs/architecture.md): unit is pure (the command runner refuses to run),
// integration uses real tools, loop devices and a loopback server as root, vm boots QEMU.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          env: { FERRY_TEST_TIER: 'unit' },
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
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
});
