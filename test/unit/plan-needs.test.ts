/**
 * What a disk plan needs from the machine that applies it (layout/needs.ts), and the decision
 * over what the node has (installer/disk/support.ts with a fake kernel view and a fake runner:
 * no process is started).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunResult, RunOptions } from '../../common/run.js';
import { supportProblems, type KernelView } from '../../installer/disk/support.js';
import { modulesToLoad, parseModulesBuiltin, parseProcFilesystems, planNeeds } from '../../layout/needs.js';
import { parseLayout } from '../../layout/parse.js';
import { planDisks } from '../../layout/plan.js';
import type { DiskTarget } from '../../layout/types.js';

const ROOT = join(import.meta.dirname, '..', '..');
const GiB = 1024 ** 3;
const disk = (path: string): DiskTarget => ({ path, size: 8 * GiB, sectorSize: 512 });
const plan = (layout: string, disks: string[]) => planDisks(parseLayout(readFileSync(join(ROOT, 'layouts', layout), 'utf8'), { file: layout }), disks.map(disk));
const XFS = '<config><disk dev="/dev/sda" label_type="gpt"><part num="1" size="512" p_name="boot"/><part num="2" size="*"/></disk><fsinfo real_dev="/dev/sda1" mp="/boot" fs="ext4"/><fsinfo real_dev="/dev/sda2" mp="/" fs="xfs"/></config>';

describe('planNeeds: the kernel modules and programs a plan needs', () => {
  it('needs md, its RAID level and device-mapper for RAID and LVM, and each file system once', () => {
    const n = planNeeds(plan('raid1-lvm.xml', ['/dev/sda', '/dev/sdb']));
    expect(n.modules.map((m) => m.module)).toEqual(expect.arrayContaining(['md_mod', 'raid1', 'dm_mod']));
    expect(n.modules.filter((m) => m.module === 'md_mod')).toHaveLength(1);
    expect(n.modules.find((m) => m.module === 'md_mod')!.why).toContain('/dev/md0');
    expect(n.modules.find((m) => m.module === 'dm_mod')!.why).toContain('sys');
    expect(n.tools.map((t) => t.tool)).toEqual(expect.arrayContaining(['wipefs', 'parted', 'mdadm', 'pvcreate', 'vgcreate', 'lvcreate', 'mount', 'umount', 'vgchange']));
  });

  it('needs vfat for the ESP of a UEFI layout, and ext4 once for several ext4 file systems', () => {
    const n = planNeeds(plan('uefi-gpt.xml', ['/dev/sda']));
    const vfat = n.modules.find((m) => m.module === 'vfat');
    expect(vfat).toMatchObject({ fs: 'vfat' });
    expect(n.modules.filter((m) => m.module === 'ext4').length).toBeLessThanOrEqual(1);
    expect(n.modules.some((m) => m.module === 'md_mod' || m.module === 'dm_mod')).toBe(false);
    expect(n.tools.map((t) => t.tool)).toContain('mkfs.fat');
  });

  it('derives the tools from the plan steps, with their Debian packages, each once', () => {
    const p = planDisks(parseLayout(XFS), [disk('/dev/sda')]);
    const n = planNeeds(p);
    const names = n.tools.map((t) => t.tool);
    expect(new Set(names).size).toBe(names.length);
    for (const s of p.steps) expect(names).toContain(s.argv[0]);
    expect(n.tools.find((t) => t.tool === 'mkfs.xfs')).toMatchObject({ package: 'xfsprogs', why: 'to make the file systems' });
    expect(n.tools.find((t) => t.tool === 'sfdisk')).toMatchObject({ package: 'fdisk' });
    expect(n.modules.map((m) => [m.module, m.fs])).toEqual([['ext4', 'ext4'], ['xfs', 'xfs']]);
    // layout apply runs only the plan; an install also chroots into the image and finishes.
    expect(names).not.toContain('chroot');
    const inst = planNeeds(p, { installs: true, finish: 'poweroff' }).tools.map((t) => t.tool);
    expect(inst).toEqual(expect.arrayContaining(['chroot', 'sync', 'poweroff']));
    expect(planNeeds(p, { installs: true, finish: 'stay' }).tools.map((t) => t.tool)).not.toContain('poweroff');
  });

  it('knows built-in modules and registered file systems, so only the rest need modprobe', () => {
    const builtin = parseModulesBuiltin('kernel/drivers/md/md-mod.ko\nkernel/fs/ext4/ext4.ko\n\n');
    expect([...builtin]).toEqual(['md_mod', 'ext4']);
    const fss = parseProcFilesystems('nodev\tsysfs\nnodev\ttmpfs\n\text4\n\txfs\n');
    expect(fss.has('xfs') && fss.has('tmpfs') && !fss.has('nodev')).toBe(true);
    const needs = planNeeds(plan('raid1-lvm.xml', ['/dev/sda', '/dev/sdb'])).modules;
    const left = modulesToLoad(needs, builtin, fss).map((m) => m.module);
    expect(left).not.toContain('md_mod');
    expect(left).not.toContain('ext4');
    expect(left).toEqual(expect.arrayContaining(['raid1', 'dm_mod']));
  });
});

/** A kernel view with these built-ins and file systems, these tools on PATH, and a modprobe that fails for `bad`. */
function kernel(o: { builtin?: string; filesystems?: string; tools: string[]; bad?: string[] }): KernelView & { probed: string[] } {
  const probed: string[] = [];
  return {
    probed,
    builtin: () => o.builtin ?? '',
    filesystems: () => o.filesystems ?? '',
    findTool: (t) => (o.tools.includes(t) ? `/usr/sbin/${t}` : undefined),
    runner: async (argv: string[], _opts?: RunOptions): Promise<RunResult> => {
      probed.push(argv[1]);
      if (o.bad?.includes(argv[1])) throw Object.assign(new Error('command exited with code 1'), { details: { stderrTail: `modprobe: FATAL: Module ${argv[1]} not found in directory /lib/modules/6.1.0-test` } });
      return { argv, code: 0, stdout: '', stderr: '', durationMs: 1 };
    },
  };
}

describe('supportProblems: the node-side decision', () => {
  const p = () => plan('raid1-lvm.xml', ['/dev/sda', '/dev/sdb']);
  const all = () => planNeeds(p(), { installs: true, finish: 'reboot' }).tools.map((t) => t.tool);

  it('is empty when every tool is there and every module built in or loadable', async () => {
    const k = kernel({ tools: all(), builtin: 'kernel/drivers/md/md-mod.ko\n', filesystems: '\text4\n' });
    expect(await supportProblems(p(), { installs: true, finish: 'reboot' }, k)).toEqual([]);
    // Built-ins and registered file systems are not probed; the rest are loaded.
    expect(k.probed).not.toContain('md_mod');
    expect(k.probed).not.toContain('ext4');
    expect(k.probed).toEqual(expect.arrayContaining(['raid1', 'dm_mod']));
  });

  it('reports every missing tool and every module that fails to load at once, one code, modprobe\'s reason kept', async () => {
    const k = kernel({ tools: all().filter((t) => t !== 'mdadm' && t !== 'lvcreate'), bad: ['dm_mod', 'raid1'] });
    const problems = await supportProblems(p(), { installs: true, finish: 'reboot' }, k);
    expect(problems.map((x) => x.path).sort()).toEqual(['dm_mod', 'lvcreate', 'mdadm', 'raid1']);
    expect(new Set(problems.map((x) => x.code))).toEqual(new Set(['FERRY_E_NODE_UNSUPPORTED']));
    const dm = problems.find((x) => x.path === 'dm_mod')!;
    expect(dm.message).toContain('Module dm_mod not found');
    expect(dm.message).toContain('LVM volume group sys');
    expect(problems.find((x) => x.path === 'mdadm')!.hint).toContain('mdadm');
  });

  it('without modprobe, says so for every module that is not built in, without running anything', async () => {
    const k = kernel({ tools: all().filter((t) => t !== 'modprobe'), filesystems: '\text4\n' });
    const problems = await supportProblems(p(), {}, k);
    expect(k.probed).toEqual([]);
    expect(problems.map((x) => x.path)).toEqual(expect.arrayContaining(['modprobe', 'md_mod', 'raid1', 'dm_mod']));
    expect(problems.map((x) => x.path)).not.toContain('ext4');
  });
});
