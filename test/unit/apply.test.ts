/**
 * Applying a plan, in the unit tier: the runner and the device probes are a recording fake
 * (test/harness/fake-disk-host.ts), so the order of the commands, what happens when one fails
 * and the teardown are checked exactly, with no disk touched.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../../common/errors.js';
import type { ProgressEvent } from '../../common/progress.js';
import { applyDiskPlan, teardownDiskPlan } from '../../installer/disk/apply.js';
import { formatPlan } from '../../installer/disk/print.js';
import { parseLayout } from '../../layout/parse.js';
import { planDisks } from '../../layout/plan.js';
import type { DiskPlan, DiskTarget } from '../../layout/types.js';
import { FakeDiskHost } from '../harness/fake-disk-host.js';

const ROOT = join(import.meta.dirname, '..', '..');
const GiB = 1024 ** 3;
const TARGET = '/mnt/target';

function plan(file: string, disks: DiskTarget[]): DiskPlan {
  return planDisks(parseLayout(readFileSync(join(ROOT, file), 'utf8'), { file }), disks, { seed: 'unit' });
}
const raidLvm = (holders?: string[]) => plan('layouts/raid1-lvm.xml', [
  { path: '/dev/nvme0n1', size: 4 * GiB, sectorSize: 512, holders },
  { path: '/dev/nvme1n1', size: 4 * GiB, sectorSize: 512, holders },
]);

async function failure(p: Promise<unknown>): Promise<FerryError> {
  try {
    await p;
  } catch (e) {
    return e as FerryError;
  }
  throw new Error('expected a failure');
}

describe('applying a plan with a recording runner', () => {
  it('runs exactly the plan\'s commands, in order, with the root filled in, and mounts parents first', async () => {
    const p = raidLvm();
    const host = new FakeDiskHost(p);
    const events: ProgressEvent[] = [];
    await applyDiskPlan(p, { root: TARGET, yes: true, host, progress: (e) => events.push(e) });
    const ran = host.calls.filter((c) => c.argv[0] !== '(discover)').map((c) => c.argv);
    expect(ran).toEqual(p.commands.map((argv) => argv.map((a) => a.replace(/^\$ROOT/, TARGET))));
    expect(ran.map((a) => a[0]).slice(0, 4)).toEqual(['modprobe', 'modprobe', 'modprobe', 'modprobe']);
    expect(ran.findIndex((a) => a[0] === 'partx')).toBeGreaterThan(ran.findIndex((a) => a[0] === 'parted'));
    expect(ran.filter((a) => a[0] === 'mount').map((a) => a[4])).toEqual([TARGET, `${TARGET}/boot`, `${TARGET}/home`]);
    // LVM runs without udev; mount points are made before they are mounted on.
    for (const c of host.calls.filter((x) => /^(pv|vg|lv)create$/.test(x.argv[0]))) expect(c.env).toEqual({ DM_DISABLE_UDEV: '1' });
    expect([...host.dirs]).toEqual(expect.arrayContaining([TARGET, `${TARGET}/boot`, `${TARGET}/home`]));
    expect([...host.mounted].sort()).toEqual([TARGET, `${TARGET}/boot`, `${TARGET}/home`]);
    expect(events[0].state).toBe('start');
    expect(events.at(-1)!.state).toBe('end');
    // The disks are checked once, before the first command.
    expect(host.calls[0].argv).toEqual(['(discover)', '/dev/nvme0n1', '/dev/nvme1n1']);
    expect(host.calls.filter((c) => c.argv[0] === '(discover)')).toHaveLength(1);
  });

  it('refuses without --yes and runs nothing', async () => {
    const p = raidLvm();
    const host = new FakeDiskHost(p);
    const e = await failure(applyDiskPlan(p, { root: TARGET, yes: false, host }));
    expect(e.code).toBe('FERRY_E_CONFIRM_REQUIRED');
    expect(host.calls).toEqual([]);
  });

  it('refuses a disk the system mounts from before any command', async () => {
    const p = raidLvm();
    const host = new FakeDiskHost(p);
    host.procMounts = '/dev/nvme1n1p3 /srv ext4 rw 0 0\n';
    const e = await failure(applyDiskPlan(p, { root: TARGET, yes: true, host }));
    expect(e.code).toBe('FERRY_E_DISK_MOUNTED');
    expect(host.lines().filter((l) => !l.startsWith('(discover)'))).toEqual([]);
  });

  it('a failing step stops the plan and undoes what was set up before it, in reverse', async () => {
    const p = raidLvm();
    const host = new FakeDiskHost(p);
    host.failOn = (argv) => argv[0] === 'mount' && argv[4] === `${TARGET}/home`;
    const e = await failure(applyDiskPlan(p, { root: TARGET, yes: true, host }));
    expect(e.code).toBe('FERRY_E_COMMAND_FAILED');
    const lines = host.lines();
    const failed = lines.indexOf(`mount -t ext4 /dev/mapper/sys-home ${TARGET}/home`);
    expect(failed).toBeGreaterThan(0);
    expect(lines.slice(failed + 1)).toEqual([
      `umount ${TARGET}/boot`,
      `umount ${TARGET}`,
      'vgchange -a n sys',
      'mdadm --stop /dev/md1',
      'mdadm --stop /dev/md0',
    ]);
    expect(host.mounted.size).toBe(0);
    expect(host.devices.has('/dev/md0')).toBe(false);
  });

  it('a failure before anything is set up undoes nothing; a step that may fail does not stop the plan', async () => {
    const p = raidLvm();
    const host = new FakeDiskHost(p);
    host.failOn = (argv) => argv[0] === 'modprobe' || argv[0] === 'partx' || (argv[0] === 'wipefs' && argv[3] === '/dev/nvme1n1p2');
    const e = await failure(applyDiskPlan(p, { root: TARGET, yes: true, host }));
    expect(e.message).toContain('wipefs -a -f /dev/nvme1n1p2');
    expect(host.lines().at(-1)).toBe('wipefs -a -f /dev/nvme1n1p2');
  });

  it('when undoing fails too, the step\'s error is the one reported and every undo is attempted', async () => {
    const p = raidLvm();
    const host = new FakeDiskHost(p);
    host.failOn = (argv) => argv[0] === 'mkfs.ext4' || argv.join(' ') === 'vgchange -a n sys';
    const events: ProgressEvent[] = [];
    const e = await failure(applyDiskPlan(p, { root: TARGET, yes: true, host, progress: (x) => events.push(x) }));
    expect(e.message).toContain('mkfs.ext4');
    expect(host.lines().slice(-3)).toEqual(['vgchange -a n sys', 'mdadm --stop /dev/md1', 'mdadm --stop /dev/md0']);
    expect(events.some((x) => x.state === 'warning' && /left 1 thing/.test(x.message ?? ''))).toBe(true);
  });

  it('a device node that never appears fails with what was awaited, and what was made is undone', async () => {
    const p = raidLvm();
    const host = new FakeDiskHost(p);
    const geometry = host.partitionGeometry.bind(host);
    host.partitionGeometry = (dev) => (dev === '/dev/nvme1n1p2' ? { start: 0, size: 1 } : geometry(dev));
    const e = await failure(applyDiskPlan(p, { root: TARGET, yes: true, host, nodeTimeoutMs: 50 }));
    expect(e.code).toBe('FERRY_E_TIMEOUT');
    expect(e.message).toContain('/dev/nvme1n1p2');
    expect(e.message).toContain('planned geometry');
  });

  it('teardown unmounts children first, then deactivates the volume group, then stops the arrays', async () => {
    const p = raidLvm();
    const host = new FakeDiskHost(p);
    await applyDiskPlan(p, { root: TARGET, yes: true, host });
    const before = host.calls.length;
    await teardownDiskPlan(p, TARGET, { host });
    expect(host.lines().slice(before)).toEqual([
      `umount ${TARGET}/home`, `umount ${TARGET}/boot`, `umount ${TARGET}`, 'vgchange -a n sys', 'mdadm --stop /dev/md1', 'mdadm --stop /dev/md0',
    ]);
    // Again: nothing is mounted and no array is there, so only the volume group is asked.
    const again = host.calls.length;
    await teardownDiskPlan(p, TARGET, { host });
    expect(host.lines().slice(again)).toEqual(['vgchange -a n sys']);
  });

  it('teardown attempts every step and reports what it left', async () => {
    const p = raidLvm();
    const host = new FakeDiskHost(p);
    await applyDiskPlan(p, { root: TARGET, yes: true, host });
    host.failOn = (argv) => argv[0] === 'umount' && argv[1] === `${TARGET}/boot`;
    const e = await failure(teardownDiskPlan(p, TARGET, { host }));
    expect(e.code).toBe('FERRY_E_TEARDOWN');
    expect(e.message).toContain(`umount ${TARGET}/boot`);
    expect(host.lines().at(-1)).toBe('mdadm --stop /dev/md0');
  });

  it('releases the arrays and volumes an earlier install left, topmost first, then checks the disks again', async () => {
    const holders = ['/dev/mapper/sys-root', '/dev/mapper/my--vg-home', '/dev/md1', '/dev/md0'];
    const p = raidLvm(holders);
    expect(p.steps.filter((s) => s.kind === 'release').map((s) => s.argv.join(' '))).toEqual([
      'lvchange -a n sys/root', 'lvchange -a n my-vg/home', 'mdadm --stop /dev/md1', 'mdadm --stop /dev/md0',
    ]);
    const host = new FakeDiskHost(p, { holders: { '/dev/nvme0n1': holders, '/dev/nvme1n1': holders.slice(2) } });
    await applyDiskPlan(p, { root: TARGET, yes: true, host });
    const lines = host.lines();
    expect(lines.slice(0, 6)).toEqual([
      '(discover) /dev/nvme0n1 /dev/nvme1n1',
      'lvchange -a n sys/root', 'lvchange -a n my-vg/home', 'mdadm --stop /dev/md1', 'mdadm --stop /dev/md0',
      '(discover) /dev/nvme0n1 /dev/nvme1n1',
    ]);
    expect(host.calls[1].env).toEqual({ DM_DISABLE_UDEV: '1' });
  });

  it('refuses a holder the plan does not release, before any command', async () => {
    const p = raidLvm();
    const host = new FakeDiskHost(p, { holders: { '/dev/nvme0n1': ['/dev/md127'] } });
    const e = await failure(applyDiskPlan(p, { root: TARGET, yes: true, host }));
    expect(e.code).toBe('FERRY_E_DISK_IN_USE');
    expect(e.message).toContain('/dev/md127');
    expect(host.lines()).toEqual(['(discover) /dev/nvme0n1 /dev/nvme1n1']);
    const other = new FakeDiskHost(p, { holders: { '/dev/nvme0n1': ['/dev/bcache0'] } });
    expect((await failure(applyDiskPlan(raidLvm(['/dev/bcache0']), { root: TARGET, yes: true, host: other }))).message).toContain('does not know how to release');
  });

  it('the printed plan shows every command and the teardown, with the root when it is known', () => {
    const p = raidLvm(['/dev/md0']);
    const text = formatPlan(p);
    for (const s of [...p.steps, ...p.teardown]) expect(text).toContain(s.argv.join(' '));
    expect(text).toContain('mdadm --stop /dev/md0   # if /dev/md0 is present');
    expect(text).toContain('partx -u /dev/nvme0n1   # may fail; then wait for /dev/nvme0n1p1 /dev/nvme0n1p2 /dev/nvme0n1p3');
    expect(text).toContain('umount $ROOT/home   # if /home is mounted');
    const rooted = formatPlan(p, TARGET);
    expect(rooted).toContain(`mount -t ext4 /dev/md0 ${TARGET}/boot`);
    expect(rooted).not.toContain('$ROOT');
  });
});
