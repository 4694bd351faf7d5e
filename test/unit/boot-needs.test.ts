import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FerryError } from '../../common/errors.js';
import { bootNeeds, checkBootNeeds, missingBootNeeds } from '../../installer/boot-needs.js';
import { parseLayout } from '../../layout/parse.js';
import { planDisks } from '../../layout/plan.js';
import type { DiskTarget } from '../../layout/types.js';

const ROOT = join(import.meta.dirname, '..', '..');
const GiB = 1024 ** 3;
const disk = (path: string): DiskTarget => ({ path, size: 8 * GiB, sectorSize: 512 });
const plan = (layout: string, disks: string[]) => planDisks(parseLayout(readFileSync(join(ROOT, 'layouts', layout), 'utf8'), { file: layout }), disks.map(disk));
const image = (...paths: string[]) => ({ exists: (p: string) => paths.includes(p) });

describe('what the installed system needs at boot from the disk plan', () => {
  it('needs nothing for plain partitions', () => {
    expect(bootNeeds(plan('bios-msdos.xml', ['/dev/sda']))).toEqual([]);
    expect(missingBootNeeds(plan('uefi-gpt.xml', ['/dev/sda']), image())).toEqual([]);
  });

  it('needs mdadm for RAID and lvm for LVM, naming the arrays and volume groups', () => {
    const p = plan('raid1-lvm.xml', ['/dev/sda', '/dev/sdb']);
    expect(bootNeeds(p)).toEqual([
      { tool: 'mdadm', package: 'mdadm', why: 'to assemble the RAID arrays /dev/md0, /dev/md1' },
      { tool: 'lvm', package: 'lvm2', why: 'to activate the LVM volume group sys' },
    ]);
    expect(bootNeeds(plan('raid1.xml', ['/dev/sda', '/dev/sdb'])).map((n) => n.tool)).toEqual(['mdadm']);
    expect(bootNeeds(plan('lvm.xml', ['/dev/sda'])).map((n) => n.tool)).toEqual(['lvm']);
  });

  it('finds the tools in any of the sbin and bin directories, merged /usr or not', () => {
    const p = plan('raid1-lvm.xml', ['/dev/sda', '/dev/sdb']);
    expect(missingBootNeeds(p, image('/usr/sbin/mdadm', '/sbin/lvm'))).toEqual([]);
    expect(missingBootNeeds(p, image('/sbin/mdadm')).map((n) => n.tool)).toEqual(['lvm']);
    expect(missingBootNeeds(p, image('/usr/sbin/lvm', '/usr/share/doc/mdadm')).map((n) => n.tool)).toEqual(['mdadm']);
  });

  it('stops with the missing packages and how to add them', () => {
    const p = plan('raid1-lvm.xml', ['/dev/sda', '/dev/sdb']);
    let err: unknown;
    try {
      checkBootNeeds(p, image(), 'sample@1');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FerryError);
    const fe = err as FerryError;
    expect(fe.code).toBe('FERRY_E_IMAGE_CANNOT_BOOT');
    expect(fe.message).toBe('the image sample@1 cannot boot from this layout: it has no mdadm (package mdadm) to assemble the RAID arrays /dev/md0, /dev/md1; lvm (package lvm2) to activate the LVM volume group sys');
    expect(fe.hint).toContain('chroot DIR apt-get install mdadm lvm2');
    expect(fe.hint).toContain('a layout without RAID or LVM');
    expect(() => checkBootNeeds(p, image('/usr/sbin/mdadm', '/usr/sbin/lvm'), 'sample@1')).not.toThrow();
  });
});
