/**
 * One table of every program Ferry runs (TOOLS in common/run.ts), with its Debian package:
 * every program the product code runs is in it, and every one the installer runs is in the boot
 * environment's package list (initrd/packages.txt), so an install never meets a missing tool.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TOOLS, packageOf } from '../../common/run.js';
import { parsePackageList, type PackageSpec } from '../../initrd/spec.js';
import { mkfsArgv } from '../../layout/filesystems.js';
import { parseLayout } from '../../layout/parse.js';
import { planDisks } from '../../layout/plan.js';
import { MKFS_TYPES } from '../../layout/types.js';

const ROOT = join(import.meta.dirname, '..', '..');
const CODE = ['cli', 'common', 'installer', 'layout', 'layers', 'server', 'initrd'];

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? tsFiles(p) : e.endsWith('.ts') ? [p] : [];
  });
}

/** Programs named as the first word of an argv in the code: run(['x', …]), spawnTool(['x', …]), argv: ['x', …], ['x', '-…']. */
export function programsIn(source: string): string[] {
  const out = new Set<string>();
  // run([finish === 'reboot' ? 'reboot' : 'poweroff', '-f'])
  for (const m of source.matchAll(/\b(?:run|spawnTool)\(\s*\[[^\]\n]*?\?\s*'([a-z][\w.-]*)'\s*:\s*'([a-z][\w.-]*)'/g)) out.add(m[1]).add(m[2]);
  for (const m of source.matchAll(/(?:\b(?:run|spawnTool)\(\s*\[|\bargv:\s*\[|\bargv = (?:[^;\n]*?\?\s*)?\[)\s*'([a-z][a-z0-9._-]*)'/g)) out.add(m[1]);
  return [...out];
}

/** Every program the planner puts in a plan, over every example layout and every file system. */
function plannedPrograms(): string[] {
  const out = new Set<string>();
  for (const t of MKFS_TYPES) out.add(mkfsArgv(t, '/dev/x1', t === 'jfs' ? undefined : /fat|msdos/.test(t) ? 'ABCD-1234' : '00000000-0000-4000-8000-000000000000', undefined, [])[0]);
  for (const f of readdirSync(join(ROOT, 'layouts'))) {
    const layout = parseLayout(readFileSync(join(ROOT, 'layouts', f), 'utf8'), { file: f });
    const disks = layout.disks.map((d, i) => ({ path: `/dev/vd${'abcd'[i]}`, size: 64 * 1024 ** 3, sectorSize: 512, holders: i === 0 ? ['/dev/md9', '/dev/mapper/old-root'] : [] }));
    const plan = planDisks(layout, disks, { seed: 'tools' });
    for (const s of [...plan.steps, ...plan.teardown]) out.add(s.argv[0]);
  }
  return [...out];
}

/** Whether the boot environment's list takes this program from this package. */
function provides(spec: PackageSpec, pkg: string, program: string): boolean {
  const e = spec.packages.find((p) => p.name === pkg);
  if (!e || e.librariesOnly) return false;
  return e.programs.length === 0 || e.programs.includes('*') || e.programs.includes(program);
}

describe('the tool table', () => {
  const used = new Map<string, string>();
  for (const d of CODE) for (const f of tsFiles(join(ROOT, d))) for (const p of programsIn(readFileSync(f, 'utf8'))) if (!used.has(p)) used.set(p, f.slice(ROOT.length + 1));
  for (const p of plannedPrograms()) if (!used.has(p)) used.set(p, 'a disk plan');

  it('finds the programs the code runs', () => {
    expect(programsIn("await run(['partx', '-u', d]); spawnTool(['zstd', '-dcq']); const argv = ['lsblk', '-J']; const argv = fifo ? ['mknod', '-m'] : ['b']; names: ['ext4']; run([a ? 'reboot' : 'poweroff', '-f'])")).toEqual(['reboot', 'poweroff', 'partx', 'zstd', 'lsblk', 'mknod']);
    expect([...used.keys()]).toEqual(expect.arrayContaining(['parted', 'mkfs.ext4', 'mkfs.reiserfs', 'mdadm', 'lvchange', 'partx', 'mount', 'umount', 'vgchange', 'zstd', 'setfattr', 'chroot', 'reboot']));
  });

  it('lists every program the code runs, with its package', () => {
    const missing = [...used].filter(([p]) => !TOOLS[p]).map(([p, where]) => `${p} (run by ${where})`);
    expect(missing).toEqual([]);
    expect(packageOf('/usr/sbin/mkfs.xfs')).toBe('xfsprogs');
  });

  it('the boot environment provides every program the installer runs', () => {
    const spec = parsePackageList(readFileSync(join(ROOT, 'initrd/packages.txt'), 'utf8'));
    const lacking = Object.entries(TOOLS)
      .filter(([, t]) => t.by.includes('installer'))
      .filter(([name, t]) => !provides(spec, t.bootEnv ?? t.package, name))
      .map(([name, t]) => `${name} (package ${t.bootEnv ?? t.package})`);
    expect(lacking).toEqual([]);
  });

  it('a program missing from the boot environment is found', () => {
    const spec = parsePackageList('kernel linux-image-amd64\nparted parted\nlvm2\nlibc6 :libraries\n');
    expect(provides(spec, 'parted', 'parted')).toBe(true);
    expect(provides(spec, 'parted', 'partprobe')).toBe(false);
    expect(provides(spec, 'lvm2', 'lvchange')).toBe(true);
    expect(provides(spec, 'libc6', 'ldd')).toBe(false);
    expect(provides(spec, 'mdadm', 'mdadm')).toBe(false);
  });
});
