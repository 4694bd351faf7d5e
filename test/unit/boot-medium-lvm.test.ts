/**
 * Issue 17, the planner's side: the disk of the medium the node booted from is never mapped to
 * a layout disk unless the layout names it exactly (removable or not: a USB stick that reports
 * RM=0, a virtio disk holding the medium), and LVM physical volumes get seeded UUIDs
 * (`pvcreate --uuid U --norestorefile`; vgcreate and lvcreate take none).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseLayout } from '../../layout/parse.js';
import { planDisks } from '../../layout/plan.js';
import { LVM_UUID_RE, seededLvmUuid } from '../../layout/uuid.js';
import type { DiskTarget } from '../../layout/types.js';

const ROOT = join(import.meta.dirname, '..', '..');
const read = (f: string) => parseLayout(readFileSync(join(ROOT, f), 'utf8'), { file: f });
const GiB = 1024 ** 3;
const plannedOnto = (p: ReturnType<typeof planDisks>) => p.disks.map((d) => d.path);
function problems(f: () => unknown): { code: string; message: string; hint?: string }[] {
  try {
    f();
  } catch (e) {
    return (e as { problems?: { code: string; message: string; hint?: string }[] }).problems ?? [];
  }
  return [];
}

describe('the boot medium is never planned onto unless named', () => {
  // A USB stick that reports itself non-removable, at /dev/sda: the layout's own disk name.
  const stick: DiskTarget = { path: '/dev/sda', size: 16 * GiB, sectorSize: 512, removable: false, bootMedium: true, serial: '4C5300012306', byId: ['usb-SanDisk_Ultra_Fit_4C5300012306-0:0'] };
  const ssd: DiskTarget = { path: '/dev/nvme0n1', size: 500 * GiB, sectorSize: 512, serial: 'S4EWNX0R1234' };
  const layout = () => read('layouts/bios-msdos.xml');

  it('not by its kernel name, even the layout\'s own /dev/sda: the next disk is used', () => {
    expect(plannedOnto(planDisks(layout(), [stick, ssd], { seed: 's' }))).toEqual(['/dev/nvme0n1']);
  });
  it('not in order, not even when it is given with --disk', () => {
    for (const chosenDisks of [false, true]) {
      const p = problems(() => planDisks(layout(), [stick], { seed: 's', chosenDisks }));
      const m = p.find((x) => x.code === 'FERRY_E_DISK_MISSING');
      expect(m?.message).toMatch(/boot medium \/dev\/sda not used unless named/);
      expect(m?.hint).toMatch(/by-id name|--map/);
    }
  });
  it('a virtio disk holding the medium is skipped the same way', () => {
    const vdb: DiskTarget = { path: '/dev/vdb', size: 4 * GiB, sectorSize: 512, bootMedium: true };
    const vda: DiskTarget = { path: '/dev/vda', size: 20 * GiB, sectorSize: 512 };
    expect(plannedOnto(planDisks(layout(), [vdb, vda], { seed: 's' }))).toEqual(['/dev/vda']);
  });
  it('named exactly, it is used: --map, a serial hint, a /dev/disk/by-id name', () => {
    expect(plannedOnto(planDisks(layout(), [stick, ssd], { seed: 's', map: { '/dev/sda': '/dev/sda' } }))).toEqual(['/dev/sda']);
    const xml = readFileSync(join(ROOT, 'layouts/bios-msdos.xml'), 'utf8');
    const hinted = parseLayout(xml.replace('<disk dev="/dev/sda"', '<disk dev="/dev/sda" serial="4C5300012306"'));
    expect(plannedOnto(planDisks(hinted, [ssd, stick], { seed: 's' }))).toEqual(['/dev/sda']);
    const byId = parseLayout(xml.replaceAll('/dev/sda', '/dev/disk/by-id/usb-SanDisk_Ultra_Fit_4C5300012306-0:0'));
    expect(plannedOnto(planDisks(byId, [ssd, stick], { seed: 's' }))).toEqual(['/dev/sda']);
  });
});

describe('seeded LVM PV UUIDs', () => {
  it('lvm\'s 6-4-4-4-4-4-6 form, one per seed and key', () => {
    const u = seededLvmUuid('s', 'pv:/dev/sda3');
    expect(u).toMatch(LVM_UUID_RE);
    expect(seededLvmUuid('s', 'pv:/dev/sda3')).toBe(u);
    expect(seededLvmUuid('t', 'pv:/dev/sda3')).not.toBe(u);
    expect(seededLvmUuid('s', 'pv:/dev/sdb3')).not.toBe(u);
  });
  it('pvcreate gets the plan\'s UUID with --norestorefile; two deployments differ, a redeploy repeats', () => {
    const disks: DiskTarget[] = [{ path: '/dev/vda', size: 20 * GiB, sectorSize: 512 }, { path: '/dev/vdb', size: 20 * GiB, sectorSize: 512 }];
    const plan = (seed: string) => planDisks(read('test/fixtures/systemimager-layouts/04-two-disk-raid1-lvm-over-raid-v5.xml'), disks, { seed });
    const a = plan('deployment-a');
    const pvc = a.steps.filter((s) => s.argv[0] === 'pvcreate');
    expect(pvc.length).toBeGreaterThan(0);
    const uuids = a.volumeGroups.flatMap((v) => v.pvUuids);
    expect(uuids.length).toBe(a.volumeGroups.flatMap((v) => v.pvs).length);
    for (const [i, s] of pvc.entries()) {
      expect(s.argv.slice(-4)).toEqual(['--uuid', uuids[i], '--norestorefile', a.volumeGroups.flatMap((v) => v.pvs)[i]]);
      expect(uuids[i]).toMatch(LVM_UUID_RE);
    }
    expect(new Set(uuids).size).toBe(uuids.length);
    expect(plan('deployment-b').volumeGroups.flatMap((v) => v.pvUuids).filter((u) => uuids.includes(u))).toEqual([]);
    expect(plan('deployment-a').volumeGroups.flatMap((v) => v.pvUuids)).toEqual(uuids);
  });
});
