/**
 * --dry-run touches nothing: `ferry layout apply --dry-run` and `ferry install --dry-run` on a
 * loop device print the whole plan, and the disk's backing file keeps the same bytes; no mount
 * point is made under the root.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { run } from '../../common/run.js';
import { ferry, ROOT, Scratch, sha256File } from './layout-helpers.js';
import { FerryServer } from './helpers/ferry-server.js';

const GiB = 1024 ** 3;
let s: Scratch;
beforeEach(() => {
  s = new Scratch();
});
afterEach(async () => {
  await s.cleanup();
});

/** The CLI without blocking this process (the server under test runs in it). */
async function ferryAsync(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await run([join(ROOT, 'bin', 'ferry'), ...args], { okCodes: [0, 1, 2], env: { FERRY_LOG_LEVEL: 'warn' }, timeoutMs: 120_000 });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

/** A disk with something on it: random bytes where the partition table and the first file system go. */
async function usedDisk(): Promise<{ dev: string; file: string }> {
  const l = await s.loop(1 * GiB);
  writeFileSync(l.dev, randomBytes(4 * 1024 * 1024));
  return l;
}

describe('--dry-run', () => {
  it('ferry layout apply --dry-run prints every command with the root filled in and leaves the disk as it was', async () => {
    const { dev, file } = await usedDisk();
    const before = await sha256File(file);
    const root = s.root();
    const layout = join(ROOT, 'layouts/bios-msdos.xml');
    const r = ferry(['layout', 'apply', layout, '--disk', dev, '--root', root, '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`wipefs -a -f ${dev}`);
    expect(r.stdout).toContain(`partx -u ${dev}`);
    expect(r.stdout).toMatch(new RegExp(`mount -t ext4 ${dev}p6 ${root}\\n`));
    expect(r.stdout).toContain(`mount -t ext4 ${dev}p1 ${root}/boot`);
    expect(r.stdout).toContain(`umount ${root}/boot`);
    expect(r.stdout).toContain('dry run: nothing was changed');
    expect(await sha256File(file)).toBe(before);
    expect(readdirSync(root)).toEqual([]);
    expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain(dev);

    // The plan it prints is the plan `ferry layout plan` gives and `apply` runs.
    const plan = JSON.parse(ferry(['layout', 'plan', layout, '--disk', dev, '--json']).stdout);
    const dry = JSON.parse(ferry(['layout', 'apply', layout, '--disk', dev, '--dry-run', '--json']).stdout);
    expect(dry.commands).toEqual(plan.commands);
    expect(await sha256File(file)).toBe(before);
  });

  it('ferry install --dry-run prints the disk plan, the layers and the customizations, and leaves the disk as it was', async () => {
    const server = await FerryServer.start();
    try {
      const src = join(s.dir, 'src');
      mkdirSync(join(src, 'etc'), { recursive: true });
      writeFileSync(join(src, 'etc/motd'), 'hello\n');
      const img = await server.image('tiny', src, [{ kind: 'hostname' }]);
      const armed = server.arm('dry1', 'tiny', { layout: readFileSync(join(ROOT, 'layouts/bios-msdos.xml'), 'utf8') });
      const { dev, file } = await usedDisk();
      const before = await sha256File(file);
      const r = await ferryAsync(['install', '--dry-run', '--server', server.url, '--token', armed.token, '--disk', dev]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`dry run of deployment ${armed.id}: node dry1, image tiny@1`);
      expect(r.stdout).toContain(`parted -s -a none ${dev}`);
      expect(r.stdout).toContain(`mount -t ext4 ${dev}p6 $ROOT`);
      for (const l of img.layers) expect(r.stdout).toContain(l.digest);
      expect(r.stdout).toContain('customizations: hostname');
      expect(r.stdout).toContain('dry run: nothing was changed');
      expect(await sha256File(file)).toBe(before);
      // No event and no result reached the server: the same token still installs.
      const d = server.deployment(armed.id);
      expect(d.events).toEqual([]);
      // A dry run changes nothing on the server: still armed, never started (stop-23 note).
      expect(d.row.status).toBe('armed');
      expect(d.row.started_at).toBeNull();

      // --node would arm a new deployment: a dry run refuses it.
      const n = await ferryAsync(['install', '--dry-run', '--server', server.url, '--node', 'dry1', '--disk', dev]);
      expect(n.code).toBe(2);
      expect(n.stderr).toContain('--dry-run reads an armed deployment');
    } finally {
      await server.close();
    }
  });
});
