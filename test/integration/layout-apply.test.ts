/**
 * Layouts applied for real on loop devices (as root): the ext4/xfs/btrfs/swap examples, with
 * 512- and 4096-byte sectors, checked with lsblk/blkid/sysfs against the plan, mounted and
 * written to; capture round trip; and every kind of bad input leaving the disk untouched.
 * (The ESP, RAID and LVM examples need vfat/md/dm, which this host kernel lacks: test/vm.)
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../common/run.js';
import { parseLayout } from '../../layout/parse.js';
import { planDisks } from '../../layout/plan.js';
import { applyDiskPlan, teardownDiskPlan } from '../../installer/disk/apply.js';
import { discoverDisks } from '../../installer/disk/discover.js';
import { captureLayout } from '../../installer/disk/capture.js';
import type { DiskPlan } from '../../layout/types.js';
import { blkid, ferry, kernelPartition, ROOT, Scratch, sha256File } from './layout-helpers.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
let s: Scratch;
beforeEach(() => {
  s = new Scratch();
});
afterEach(async () => {
  await s.cleanup();
});

function mounted(): Map<string, { dev: string; type: string }> {
  const m = new Map<string, { dev: string; type: string }>();
  for (const l of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const f = l.split(' ');
    if (f.length > 2) m.set(f[1], { dev: f[0], type: f[2] });
  }
  return m;
}

/** Compare what the kernel and the file systems say with what the plan said. */
async function checkAgainstPlan(plan: DiskPlan, root: string): Promise<void> {
  for (const d of plan.disks) {
    const lsblk = JSON.parse((await run(['lsblk', '-J', '-b', '-o', 'NAME,PATH,TYPE,SIZE,LOG-SEC', d.path])).stdout);
    const top = lsblk.blockdevices[0];
    expect(top['log-sec']).toBe(d.sectorSize);
    const kids = new Map<string, number>((top.children ?? []).map((c: { path: string; size: number }) => [c.path, c.size]));
    for (const p of d.partitions) {
      if (p.type === 'extended') continue;
      expect(kids.get(p.device), `${p.device} in lsblk`).toBe(p.size);
      expect(kernelPartition(p.device)).toEqual({ start: p.start, size: p.size });
    }
    const pt = await blkid(d.path);
    expect(pt.PTTYPE).toBe(d.label === 'msdos' ? 'dos' : 'gpt');
  }
  const m = mounted();
  for (const f of plan.filesystems.filter((x) => x.format)) {
    const b = await blkid(f.device);
    expect(b.TYPE, f.device).toBe(f.fstabType);
    expect(b.UUID, f.device).toBe(f.uuid);
    if (f.label) expect(b.LABEL).toBe(f.label);
    expect(plan.fstab).toContain(`UUID=${f.uuid}\t${f.mountpoint}\t${f.fstabType}`);
  }
  for (const mt of plan.mounts) {
    const where = join(root, mt.mountpoint);
    expect(m.get(where.replace(/\/$/, '') || '/'), `${where} mounted`).toEqual({ dev: mt.device, type: mt.fstype });
    // Written to and read back through the file system.
    const file = join(where, `ferry-test-${mt.mountpoint.replace(/\//g, '_')}`);
    writeFileSync(file, `written to ${mt.device}\n`);
    await run(['sync', '-f', file]);
    expect(readFileSync(file, 'utf8')).toBe(`written to ${mt.device}\n`);
  }
}

describe.each([512, 4096])('applying on loop devices with %i-byte sectors', (sectorSize) => {
  it('bios-msdos (ext4, swap, extended/logical) through the CLI, then teardown', async () => {
    const { dev } = await s.loop(1 * GiB, sectorSize);
    const root = s.root();
    const file = join(ROOT, 'layouts/bios-msdos.xml');
    const json = ferry(['layout', 'plan', file, '--disk', dev, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const plan = JSON.parse(json.stdout) as DiskPlan;
    expect(plan.disks[0]).toMatchObject({ path: dev, sectorSize, label: 'msdos' });
    const r = ferry(['layout', 'apply', file, '--disk', dev, '--root', root, '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`mounted ${dev}p6 on ${root}`);
    await checkAgainstPlan(plan, root);
    const swap = plan.filesystems.find((f) => f.fs === 'swap')!;
    expect(swap.device).toBe(`${dev}p5`);
    const t = ferry(['layout', 'teardown', file, '--disk', dev, '--root', root]);
    expect(t.code, t.stderr).toBe(0);
    expect([...mounted().keys()].filter((m) => m.startsWith(root))).toEqual([]);
  });

  it('adaptive (xfs, btrfs, ext4, swap on gpt) through the API, and a capture round trip', async () => {
    const { dev } = await s.loop(2 * GiB, sectorSize);
    const root = s.root();
    const layout = parseLayout(readFileSync(join(ROOT, 'layouts/adaptive.xml'), 'utf8'));
    const disks = await discoverDisks({ only: [dev] });
    expect(disks[0]).toMatchObject({ path: dev, size: 2 * GiB, sectorSize });
    const plan = planDisks(layout, disks, { seed: 'it' });
    const events: string[] = [];
    await applyDiskPlan(plan, { root, yes: true, progress: (e) => events.push(`${e.state}:${e.object ?? ''}`) });
    expect(events[0]).toBe('start:');
    expect(events.at(-1)).toBe('end:');
    await checkAgainstPlan(plan, root);

    // Capture what was applied, plan it again onto the same disk: the same partitions.
    const xml = await captureLayout({ disks: [dev], root });
    const again = planDisks(parseLayout(xml), disks, { seed: 'other' });
    const shape = (p: DiskPlan) => p.disks[0].partitions.map((x) => [x.number, x.type, x.start, x.size]);
    expect(shape(again)).toEqual(shape(plan));
    const fsShape = (p: DiskPlan) => p.filesystems.map((f) => [f.device, f.fstabType, f.uuid, f.label ?? null, f.mountpoint]).sort();
    expect(fsShape(again)).toEqual(fsShape(plan));

    await teardownDiskPlan(plan, root);
    expect([...mounted().keys()].filter((m) => m.startsWith(root))).toEqual([]);
  });
});

describe('bad input leaves the disk untouched', () => {
  const bad = (name: string, xml: string) => ({ name, xml });
  const cases = [
    bad('malformed XML', '<config><disk dev="/dev/sda" label_type="msdos"><part num="1" size="100"></disk></config>'),
    bad('unknown file system', '<config><disk dev="/dev/sda" label_type="msdos"><part num="1" size="*"/></disk><fsinfo real_dev="/dev/sda1" mp="/" fs="zfs-on-dreams"/></config>'),
    bad('duplicate mount points', '<config><disk dev="/dev/sda" label_type="gpt"><part num="1" size="100"/><part num="2" size="*"/></disk><fsinfo real_dev="/dev/sda1" mp="/" fs="ext4"/><fsinfo real_dev="/dev/sda2" mp="/" fs="ext4"/></config>'),
    bad('two * on one disk', '<config><disk dev="/dev/sda" label_type="gpt"><part num="1" size="*"/><part num="2" size="*"/></disk><fsinfo real_dev="/dev/sda1" mp="/" fs="ext4"/></config>'),
    bad('a reference to a missing partition', '<config><disk dev="/dev/sda" label_type="gpt"><part num="1" size="*"/></disk><fsinfo real_dev="/dev/sda2" mp="/" fs="ext4"/></config>'),
    bad('a reference to a missing array', '<config><disk dev="/dev/sda" label_type="gpt"><part num="1" size="*" raid_dev="/dev/md3"/></disk><fsinfo real_dev="/dev/md3" mp="/" fs="ext4"/></config>'),
    bad('a negative size', '<config><disk dev="/dev/sda" label_type="gpt"><part num="1" size="-100"/></disk><fsinfo real_dev="/dev/sda1" mp="/" fs="ext4"/></config>'),
    bad('an unparsable size', '<config><disk dev="/dev/sda" label_type="gpt"><part num="1" size="lots"/></disk><fsinfo real_dev="/dev/sda1" mp="/" fs="ext4"/></config>'),
    bad('a layout that cannot fit', '<config><disk dev="/dev/sda" label_type="gpt"><part num="1" size="2GiB"/></disk><fsinfo real_dev="/dev/sda1" mp="/" fs="ext4"/></config>'),
    bad('a hint that matches nothing', '<config><disk dev="/dev/sda" label_type="gpt" serial="NO-SUCH-SERIAL"><part num="1" size="*"/></disk><fsinfo real_dev="/dev/sda1" mp="/" fs="ext4"/></config>'),
    bad('a file system too big for its partition size', '<config><disk dev="/dev/sda" label_type="gpt"><part num="1" size="100MiB"/></disk><fsinfo real_dev="/dev/sda1" mp="/" fs="xfs"/></config>'),
  ];
  const codes: Record<string, string> = {
    'malformed XML': 'FERRY_E_LAYOUT_XML', 'unknown file system': 'FERRY_E_LAYOUT_FS_UNKNOWN', 'duplicate mount points': 'FERRY_E_LAYOUT_DUP_MOUNT',
    'two * on one disk': 'FERRY_E_LAYOUT_TWO_FILLS', 'a reference to a missing partition': 'FERRY_E_LAYOUT_REF', 'a reference to a missing array': 'FERRY_E_LAYOUT_REF',
    'a negative size': 'FERRY_E_LAYOUT_SIZE', 'an unparsable size': 'FERRY_E_LAYOUT_SIZE', 'a layout that cannot fit': 'FERRY_E_LAYOUT_TOO_BIG',
    'a hint that matches nothing': 'FERRY_E_DISK_NO_MATCH', 'a file system too big for its partition size': 'FERRY_E_FS_TOO_SMALL',
  };

  it('every kind of bad layout is refused with its code and the line, the image unchanged', async () => {
    const { dev, file } = await s.loop(256 * MiB);
    // Something recognisable on the disk first: a partition table and a file system.
    const small = join(s.dir, 'small.xml');
    writeFileSync(small, '<config><disk dev="/dev/sda" label_type="gpt"><part num="1" size="*"/></disk><fsinfo real_dev="/dev/sda1" mp="/" fs="ext4"/></config>');
    const root = s.root();
    expect(ferry(['layout', 'apply', small, '--disk', dev, '--root', root, '--yes']).code).toBe(0);
    expect(ferry(['layout', 'teardown', small, '--disk', dev, '--root', root]).code).toBe(0);
    const before = await sha256File(file);
    for (const c of cases) {
      const f = join(s.dir, 'bad.xml');
      writeFileSync(f, c.xml);
      const v = ferry(['layout', 'validate', f]);
      const r = ferry(['layout', 'apply', f, '--disk', dev, '--root', s.root(), '--yes']);
      expect(r.code, `${c.name}: ${r.stderr}`).toBe(1);
      expect(r.stderr, c.name).toContain(codes[c.name]);
      expect(r.stderr, c.name).toMatch(/line \d+/);
      if (!['a layout that cannot fit', 'a hint that matches nothing', 'a file system too big for its partition size'].includes(c.name)) {
        expect(v.code, c.name).toBe(1);
        expect(v.stderr).toContain(codes[c.name]);
      } else expect(v.code, c.name).toBe(0);
    }
    // Refusals on the command line and by the disk's state.
    const good = join(ROOT, 'layouts/bios-msdos.xml');
    const tiny = small;
    const noYes = ferry(['layout', 'apply', tiny, '--disk', dev, '--root', s.root()]);
    expect(noYes.code).toBe(1);
    expect(noYes.stderr).toContain('FERRY_E_CONFIRM_REQUIRED');
    const badMap = ferry(['layout', 'apply', tiny, '--disk', dev, '--map', '/dev/sda=/dev/nonexistent', '--root', s.root(), '--yes']);
    expect(badMap.stderr).toContain('FERRY_E_DISK_MAP');
    const noDisk = ferry(['layout', 'apply', tiny, '--disk', '/dev/nonexistent-disk', '--root', s.root(), '--yes']);
    expect(noDisk.stderr).toContain('FERRY_E_DISK_NOT_FOUND');
    const tooBig = ferry(['layout', 'apply', good, '--disk', dev, '--root', s.root(), '--yes']);
    expect(tooBig.stderr).toMatch(/FERRY_E_LAYOUT_TOO_BIG.*need at least \d+ bytes .* has \d+ bytes/s);
    // Mounted (read-only, so the image cannot change underneath): refused even with --yes.
    const mnt = join(s.dir, 'mnt');
    mkdirSync(mnt);
    await run(['mount', '-o', 'ro,noload', `${dev}p1`, mnt]);
    const busy = ferry(['layout', 'apply', tiny, '--disk', dev, '--root', s.root(), '--yes']);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain('FERRY_E_DISK_MOUNTED');
    expect(busy.stderr).toContain(mnt);
    await run(['umount', mnt]);
    expect(await sha256File(file)).toBe(before);
  });
});
