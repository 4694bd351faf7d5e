import { describe, expect, it } from 'vitest';
import { releaseSteps, splitDmName, stepArgv, teardownSteps, underRoot } from '../../layout/plan-steps.js';
import type { PlanStep } from '../../layout/types.js';

describe('plan steps around the core', () => {
  it('reads device-mapper names of logical volumes (a - inside a name is doubled)', () => {
    expect(splitDmName('sys-root')).toEqual({ vg: 'sys', lv: 'root' });
    expect(splitDmName('my--vg-home--2')).toEqual({ vg: 'my-vg', lv: 'home-2' });
    expect(splitDmName('nodash')).toBeUndefined();
    expect(splitDmName('-x')).toBeUndefined();
  });

  it('releases each holder once, in the order found, and none of a kind it cannot release', () => {
    const steps = releaseSteps([
      { path: '/dev/sda', size: 1, sectorSize: 512, holders: ['/dev/mapper/vg-lv', '/dev/md0', '/dev/bcache0'] },
      { path: '/dev/sdb', size: 1, sectorSize: 512, holders: ['/dev/md0'] },
      { path: '/dev/sdc', size: 1, sectorSize: 512 },
    ]);
    expect(steps.map((s) => [s.argv.join(' '), s.when])).toEqual([['lvchange -a n vg/lv', 'present'], ['mdadm --stop /dev/md0', 'present']]);
    expect(steps[1].comment).toBe('stop array /dev/md0 built on /dev/sda, /dev/sdb');
  });

  it('teardown undoes mounts, volume groups and arrays in reverse, naming the step it undoes', () => {
    const steps: PlanStep[] = [
      { kind: 'raid', argv: ['mdadm', '--create', '/dev/md0', '--run'], device: '/dev/md0' },
      { kind: 'lvm', argv: ['vgcreate', '-y', '--physicalextentsize', '4096k', 'vg0', '/dev/md0'] },
      { kind: 'mkfs', argv: ['mkfs.ext4', '/dev/mapper/vg0-root'] },
      { kind: 'mount', argv: ['mount', '-t', 'ext4', '/dev/mapper/vg0-root', '$ROOT'], mountpoint: '/', device: '/dev/mapper/vg0-root' },
      { kind: 'mount', argv: ['mount', '-t', 'ext4', '/dev/md1', '$ROOT/var'], mountpoint: '/var', device: '/dev/md1' },
    ];
    expect(teardownSteps(steps).map((s) => [s.argv.join(' '), s.undoes])).toEqual([
      ['umount $ROOT/var', 4], ['umount $ROOT', 3], ['vgchange -a n vg0', 1], ['mdadm --stop /dev/md0', 0],
    ]);
  });

  it('fills in the target root only where the plan names it', () => {
    const s: PlanStep = { kind: 'mount', argv: ['mount', '-t', 'ext4', '/dev/x$ROOT', underRoot('/boot')], mountpoint: '/boot' };
    expect(stepArgv(s, (mp) => `/t${mp}`)).toEqual(['mount', '-t', 'ext4', '/dev/x$ROOT', '/t/boot']);
    expect(underRoot('/')).toBe('$ROOT');
  });
});
