/**
 * Arm-time checks: `ferry deploy` refuses a node whose layout or disk map would fail on the
 * node (nothing armed), says that the node's disks are checked on the node, and `ferry deploy
 * --check` prints the same report for every node without arming or storing anything.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../../common/run.js';
import { LAYOUT, smallTree, tempDir } from './helpers.js';

const FERRY = join(import.meta.dirname, '..', '..', '..', 'bin', 'ferry');

describe('ferry deploy checks before it arms', () => {
  let t: ReturnType<typeof tempDir>;
  let data: string;
  const ferry = (args: string[], okCodes = [0]) => run([FERRY, ...args, '--data', data], { okCodes, timeoutMs: 60_000 });

  beforeAll(async () => {
    t = tempDir('ferry-deploy-check-');
    data = join(t.dir, 'data');
    smallTree(join(t.dir, 'tree'));
    writeFileSync(join(t.dir, 'good.xml'), LAYOUT);
    writeFileSync(join(t.dir, 'noroot.xml'), LAYOUT.replace('mp="/"', 'mp="/srv"'));
    writeFileSync(join(t.dir, 'hostile.xml'), LAYOUT.replace('fs="ext4"', 'fs="btrfs" mkfs_opts="-d single /dev/vdb"'));
    await ferry(['image', 'import', 'base', '--dir', join(t.dir, 'tree')]);
    await ferry(['node', 'add', 'good', '--mac', '52:54:00:00:10:01', '--image', 'base', '--layout', join(t.dir, 'good.xml')]);
    await ferry(['node', 'add', 'noroot', '--mac', '52:54:00:00:10:02', '--image', 'base', '--layout', join(t.dir, 'noroot.xml')]);
    await ferry(['node', 'add', 'badmap', '--mac', '52:54:00:00:10:03', '--image', 'base', '--layout', join(t.dir, 'good.xml'), '--disk-map', '/dev/sdz=/dev/vda']);
    await ferry(['node', 'add', 'badnet', '--mac', '52:54:00:00:10:05', '--image', 'base', '--layout', join(t.dir, 'good.xml'), '--set', 'network.interface=eth0\n    up touch /pwned']);
    await ferry(['node', 'add', 'noimage', '--mac', '52:54:00:00:10:04', '--layout', join(t.dir, 'good.xml')]);
  });
  afterAll(() => t?.cleanup());

  it('--check reports every node\'s problems and arms nothing', async () => {
    const r = await ferry(['deploy', '--check', 'good', 'noroot', 'badmap', 'badnet', 'noimage', '--json'], [1]);
    const rep = JSON.parse(r.stdout) as { ok: boolean; nodes: { node: string; problems: { severity: string; code: string }[] }[] };
    expect(rep.ok).toBe(false);
    const codes = Object.fromEntries(rep.nodes.map((n) => [n.node, n.problems.map((p) => `${p.severity}:${p.code}`)]));
    expect(codes).toEqual({
      good: ['warning:FERRY_W_ARM_NO_HARDWARE'],
      noroot: ['error:FERRY_E_LAYOUT_NO_ROOT'],
      badmap: ['error:FERRY_E_DISK_MAP'],
      badnet: ['error:FERRY_E_CUSTOMIZE_INPUT', 'warning:FERRY_W_ARM_NO_HARDWARE'],
      noimage: ['error:FERRY_E_NODE_NO_IMAGE', 'warning:FERRY_W_ARM_NO_HARDWARE'],
    });
    const text = await ferry(['deploy', '--check', 'good'], [0]);
    expect(text.stdout).toMatch(/^good: ok, image base@1/);
    expect(text.stdout).toContain('FERRY_W_ARM_NO_HARDWARE');
    // A hostile layout given on the command line is checked, not stored.
    const h = await ferry(['deploy', '--check', 'good', '--layout', join(t.dir, 'hostile.xml')], [1]);
    expect(h.stdout).toMatch(/FERRY_E_LAYOUT_OPTIONS: line \d+: \/config\/fsinfo\[1\]\/@mkfs_opts/);
    expect(JSON.parse((await ferry(['history', '--json'])).stdout)).toEqual([]);
    expect(JSON.parse((await ferry(['node', 'show', 'good', '--json'])).stdout).bootAction).toBe('local');
  });

  it('deploy refuses a selection with an error, and arms a good node with the warning on stderr', async () => {
    const bad = await ferry(['deploy', 'good', 'noroot'], [1]);
    expect(bad.stderr).toContain('FERRY_E_DEPLOY_CHECK');
    expect(bad.stderr).toContain('FERRY_E_LAYOUT_NO_ROOT');
    expect(JSON.parse((await ferry(['history', '--json'])).stdout)).toEqual([]);
    const ok = await ferry(['deploy', 'good', '--json']);
    expect(JSON.parse(ok.stdout).deployments[0]).toMatchObject({ node: 'good', warnings: [{ code: 'FERRY_W_ARM_NO_HARDWARE' }] });
    expect(ok.stderr).toContain('FERRY_W_ARM_NO_HARDWARE');
  });
});
