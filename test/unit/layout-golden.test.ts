/**
 * Golden plans: every SystemImager fixture and every example layout, planned onto fixed disks,
 * must give exactly the plan stored in test/fixtures/golden/. After an intended change,
 * regenerate with `make golden` (UPDATE_GOLDEN=1) and review the diff.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseLayout } from '../../layout/parse.js';
import { planDisks } from '../../layout/plan.js';
import type { DiskTarget } from '../../layout/types.js';

const ROOT = join(import.meta.dirname, '..', '..');
const GOLDEN = join(ROOT, 'test', 'fixtures', 'golden');
const GiB = 1024 ** 3;
const disk = (path: string, gib: number, sectorSize = 512): DiskTarget => ({ path, size: gib * GiB, sectorSize });

const GOLDEN_CASES: { name: string; file: string; disks: DiskTarget[]; map?: Record<string, string> }[] = [
  { name: 'si01-vda', file: 'test/fixtures/systemimager-layouts/01-simple-msdos-extended-logical-grub2-legacy.xml', disks: [disk('/dev/vda', 20)] },
  { name: 'si02-nvme', file: 'test/fixtures/systemimager-layouts/02-complex-msdos-unordered-nums-midstar-MiB.xml', disks: [disk('/dev/nvme0n1', 64)] },
  { name: 'si03-sda-4k', file: 'test/fixtures/systemimager-layouts/03-gpt-efi-esp-fat32-grub2-efi.xml', disks: [disk('/dev/sda', 16, 4096)] },
  { name: 'si04-vda-vdb', file: 'test/fixtures/systemimager-layouts/04-two-disk-raid1-lvm-over-raid-v5.xml', disks: [disk('/dev/vda', 20), disk('/dev/vdb', 20)] },
  { name: 'si05-sdb-sda-mapped', file: 'test/fixtures/systemimager-layouts/05-legacy-2006-autoinstallscript-hda-hdc-raid-lvm-boel.xml', disks: [disk('/dev/sda', 20), disk('/dev/sdb', 24)], map: { '/dev/hda': '/dev/sdb', '/dev/hdc': '/dev/sda' } },
  { name: 'si06-mmcblk', file: 'test/fixtures/systemimager-layouts/06-systeminstaller-generated-2018-no-bootloader.xml', disks: [disk('/dev/mmcblk0', 8)] },
  { name: 'bios-msdos-xvda', file: 'layouts/bios-msdos.xml', disks: [disk('/dev/xvda', 4)] },
  { name: 'uefi-gpt-loop', file: 'layouts/uefi-gpt.xml', disks: [disk('/dev/loop7', 2)] },
  { name: 'uefi-gpt-loop-4k', file: 'layouts/uefi-gpt.xml', disks: [disk('/dev/loop7', 2, 4096)] },
  { name: 'lvm-vda', file: 'layouts/lvm.xml', disks: [disk('/dev/vda', 8)] },
  { name: 'lvm-vda-small', file: 'layouts/lvm.xml', disks: [disk('/dev/vda', 2)] },
  { name: 'raid1-vda-vdb', file: 'layouts/raid1.xml', disks: [disk('/dev/vda', 2), disk('/dev/vdb', 3)] },
  { name: 'raid1-lvm-nvme', file: 'layouts/raid1-lvm.xml', disks: [disk('/dev/nvme0n1', 4), disk('/dev/nvme1n1', 4)] },
  { name: 'adaptive-2g', file: 'layouts/adaptive.xml', disks: [disk('/dev/vda', 2)] },
  { name: 'adaptive-500g', file: 'layouts/adaptive.xml', disks: [disk('/dev/sda', 500)] },
  { name: 'adaptive-120g-4k', file: 'layouts/adaptive.xml', disks: [disk('/dev/nvme0n1', 120, 4096)] },
];

describe('golden plans', () => {
  it.each(GOLDEN_CASES.map((c) => [c.name, c] as const))('%s', (_n, c) => {
    const layout = parseLayout(readFileSync(join(ROOT, c.file), 'utf8'), { file: c.file });
    const plan = planDisks(layout, c.disks, { map: c.map, seed: 'golden' });
    const text = JSON.stringify(plan, null, 2) + '\n';
    const path = join(GOLDEN, `${c.name}.json`);
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(path, text);
    expect(existsSync(path), `${path} is missing: run make golden`).toBe(true);
    expect(text).toBe(readFileSync(path, 'utf8'));
    // The same inputs always give the same plan.
    expect(JSON.stringify(planDisks(layout, c.disks, { map: c.map, seed: 'golden' }), null, 2) + '\n').toBe(text);
  });
});
