/**
 * Hostile layouts: every value that reaches a command or a file is refused where it is read,
 * with its code and its place in the XML, or escaped for the file it lands in. Each class is
 * tried with several inputs, built here rather than taken from the review that found them.
 */
import { describe, expect, it } from 'vitest';
import { readLayout, parseLayout } from '../../layout/parse.js';
import { planDisks } from '../../layout/plan.js';
import { foreignDevices } from '../../layout/owned.js';
import { didYouMean, fstabField, gptNameProblem, mkfsOptionProblems, optionListProblems, safeGptName } from '../../layout/values.js';
import { captureToXml } from '../../layout/capture.js';
import type { Problem } from '../../common/errors.js';
import type { DiskPlan } from '../../layout/types.js';

const GiB = 1024 ** 3;
const disks = [{ path: '/dev/vda', size: 8 * GiB, sectorSize: 512 }];

/** A one-disk GPT layout with the given attributes spliced into its part and fsinfo. */
function layout(o: { part?: string; fs?: string; extraFs?: string; disk?: string; lv?: string } = {}): string {
  return `<config>
  <disk dev="/dev/sda" label_type="gpt" ${o.disk ?? ''}>
    <part num="1" size="512" ${o.part ?? ''}/>
    <part num="2" size="*"/>
  </disk>
  <fsinfo line="10" real_dev="/dev/sda2" mp="/" fs="ext4" ${o.fs ?? ''}/>
  ${o.extraFs ?? ''}
</config>`;
}

function errors(xml: string): Problem[] {
  return readLayout(xml).problems.filter((p) => p.severity === 'error');
}
function warnings(xml: string): Problem[] {
  return readLayout(xml).problems.filter((p) => p.severity === 'warning');
}
function xmlAttr(v: string): string {
  return v.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/\n/g, '&#10;').replace(/\t/g, '&#9;').replace(/\r/g, '&#13;');
}

describe('values that would become more command words are refused where they are read', () => {
  it('GPT names: whitespace, quotes, a leading dash and more than 36 UTF-16 units', () => {
    const bad = ['x 2048s 4095s select /dev/vdb mklabel msdos', 'a\tb', "it's", 'a"b', 'back\\slash', '-1s', 'x'.repeat(37), '😀'.repeat(19)];
    for (const name of bad) {
      const e = errors(layout({ part: `p_name="${xmlAttr(name)}"` }));
      expect(e.map((p) => p.code), name).toContain('FERRY_E_LAYOUT_VALUE');
      const p = e.find((x) => x.code === 'FERRY_E_LAYOUT_VALUE')!;
      expect(p.path).toBe('/config/disk[1]/part[1]/@p_name');
      expect(p.line).toBe(3);
      expect(p.hint).toBeTruthy();
    }
    for (const ok of ['root', 'EFI-system', 'x'.repeat(36), 'données', '😀'.repeat(18)]) {
      expect(errors(layout({ part: `p_name="${ok}"` })), ok).toEqual([]);
    }
  });

  it('a captured disk with names other tools write (spaces, quotes) captures into a layout that reads back', () => {
    for (const n of ['EFI System Partition', 'Microsoft reserved partition', "Bob's \"data\"", '-leading', 'x y '.repeat(20)]) {
      const safe = safeGptName(n);
      expect(safe, n).toBeDefined();
      expect(gptNameProblem(safe!), n).toBeUndefined();
    }
    const xml = captureToXml({
      disks: [{ path: '/dev/vda', size: 8 * GiB, sectorSize: 512, label: 'gpt', partitions: [
        { number: 1, start: 1024 ** 2, size: 512 * 1024 ** 2, name: 'EFI System Partition', flags: ['esp'] },
        { number: 2, start: 513 * 1024 ** 2, size: 4 * GiB, name: 'Linux filesystem', flags: [] },
      ] }],
      raids: [], volumeGroups: [], filesystems: [{ device: '/dev/vda2', type: 'ext4', mountpoint: '/' }],
    } as unknown as Parameters<typeof captureToXml>[0]);
    expect(xml).toContain('p_name="EFI-System-Partition"');
    expect(errors(xml)).toEqual([]);
  });

  it('a hostile GPT name never reaches parted: the argv holds the planned words only', () => {
    const l = readLayout(layout({ part: 'p_name="boot"' })).layout!;
    const plan = planDisks(l, disks);
    const parted = plan.steps.find((s) => s.kind === 'partition')!.argv;
    expect(parted.filter((w) => w.startsWith('/dev/'))).toEqual(['/dev/vda']);
    expect(parted).toContain('boot');
  });

  it('mkfs_opts: options only, never a device or a positional word, never an option naming another disk', () => {
    const cases: [string, string][] = [
      ['btrfs', '-d single /dev/vdb'],
      ['btrfs', '-f /dev/vdb'],
      ['ext4', '-J device=/dev/vdb'],
      ['ext4', '-O ^has_journal /dev/vdb1'],
      ['ext4', '-o smuggle'.replace('smuggle', 'Linux') + ' -d /etc'],
      ['ext4', '-U 00000000-0000-0000-0000-000000000000'],
      ['ext4', '-L evil'],
      ['ext4', '-E stride=4,offset=1000'],
      ['ext4', '-b"4096"'],
      ['ext4', '-b $(reboot)'],
      ['xfs', '-l logdev=/dev/vdb,size=10m'],
      ['xfs', '-r rtdev=/dev/vdb'],
      ['xfs', '-d file,name=/tmp/x'],
      ['ext4', 'extra-word'],
      ['ext4', '-b'],
      ['ext4', '--'],
      ['swap', '/dev/vdb'],
    ];
    for (const [fs, opts] of cases) {
      const xml = layout({ fs: `mkfs_opts="${xmlAttr(opts)}"` }).replace('fs="ext4"', `fs="${fs}"`);
      const e = errors(xml);
      expect(e.map((p) => p.code), `${fs}: ${opts}`).toContain('FERRY_E_LAYOUT_OPTIONS');
      expect(e.find((p) => p.code === 'FERRY_E_LAYOUT_OPTIONS')!.path).toBe('/config/fsinfo[1]/@mkfs_opts');
    }
  });

  it('mkfs_opts: the options each mkfs documents pass, with their values', () => {
    const ok: [string, string][] = [
      ['ext4', '-b 4096 -O ^has_journal,metadata_csum -E stride=16,stripe_width=64 -m 1 -T news -j -J size=64'],
      ['ext4', '-b4096 -i 16384'],
      ['xfs', '-m crc=1,finobt=1 -d su=64k,sw=4 -l size=64m,internal=1 -n ftype=1'],
      ['btrfs', '-d single -m dup --csum xxhash -n 16384'],
      ['btrfs', '--data=raid1 --metadata=raid1'],
      ['swap', '--pagesize 4096'],
    ];
    for (const [fs, opts] of ok) expect(mkfsOptionProblems(fs, opts.split(/\s+/)), `${fs}: ${opts}`).toEqual([]);
  });

  it('lv_options: lvcreate options only, never a physical volume or a size of its own', () => {
    const lvm = (opts: string) => `<config><disk dev="/dev/sda" label_type="gpt"><part num="1" size="*" lvm_group="vg"/></disk>
      <lvm><lvm_group name="vg"><lv name="root" size="*" lv_options="${xmlAttr(opts)}"/></lvm_group></lvm>
      <fsinfo real_dev="/dev/vg/root" mp="/" fs="ext4"/></config>`;
    for (const bad of ['/dev/vdb', '-i 2 /dev/vdb1', '-L 10G', '--type raid1 -m 1 othervg', '--config devices{}']) {
      expect(errors(lvm(bad)).map((p) => p.code), bad).toContain('FERRY_E_LAYOUT_OPTIONS');
    }
    expect(errors(lvm('--type raid1 -m 1'))).toEqual([]);
    expect(errors(lvm('-i 2 -I 64'))).toEqual([]);
  });

  it('devices: disk, member and mount_dev paths are /dev paths without . or .. or spaces', () => {
    expect(errors(layout().replace('dev="/dev/sda"', 'dev="/dev/../dev/vdb"')).map((p) => p.code)).toContain('FERRY_E_LAYOUT_VALUE');
    expect(errors(layout().replace('dev="/dev/sda"', 'dev="/dev/sd a"')).map((p) => p.code)).toContain('FERRY_E_LAYOUT_VALUE');
    expect(errors(layout({ fs: 'mount_dev="/dev/vdb x"' })).map((p) => p.code)).toContain('FERRY_E_LAYOUT_VALUE');
    const raid = `<config><disk dev="/dev/sda" label_type="gpt"><part num="1" size="*"/></disk><disk dev="/dev/sdb" label_type="gpt"><part num="1" size="*"/></disk>
      <raid name="/dev/md0" raid_level="raid1" devices="/dev/sda1 /dev/sdb1 /dev/../vdc"/><fsinfo real_dev="/dev/md0" mp="/" fs="ext4"/></config>`;
    expect(errors(raid).map((p) => p.code)).toContain('FERRY_E_LAYOUT_VALUE');
  });
});

describe('values that would become more fstab lines are refused, spaces are escaped', () => {
  const inject = '\n/dev/evil /etc ext4 defaults 0 0';
  const places: [string, (v: string) => string, string][] = [
    ['mp', (v) => layout({ extraFs: `<fsinfo real_dev="/dev/sda1" mp="/boot${xmlAttr(v)}" fs="ext4"/>` }), '/config/fsinfo[2]/@mp'],
    ['options', (v) => layout({ fs: `options="defaults${xmlAttr(v)}"` }), '/config/fsinfo[1]/@options'],
    ['mount_dev', (v) => layout({ fs: `mount_dev="LABEL=root${xmlAttr(v)}"` }), '/config/fsinfo[1]/@mount_dev'],
    ['label', (v) => layout({ fs: `label="root${xmlAttr(v)}"` }), '/config/fsinfo[1]/@label'],
    ['comment', (v) => layout({ extraFs: `<fsinfo line="1" comment="hello${xmlAttr(v)}"/>` }), '/config/fsinfo[2]/@comment'],
    ['real_dev', (v) => layout({ extraFs: `<fsinfo line="20" real_dev="proc${xmlAttr(v)}" mp="/proc" fs="proc"/>` }), '/config/fsinfo[2]/@real_dev'],
    ['fs', (v) => layout({ extraFs: `<fsinfo line="20" real_dev="proc" mp="/proc" fs="proc${xmlAttr(v)}"/>` }), '/config/fsinfo[2]/@fs'],
  ];
  for (const [name, make, path] of places) {
    it(`${name}: a newline, a tab or a carriage return is refused with its place`, () => {
      for (const c of [inject, '\tx', '\r/dev/evil', '\u0085x', '\u2028x']) {
        const e = errors(make(c));
        const p = e.find((x) => x.code === 'FERRY_E_LAYOUT_VALUE');
        expect(p, `${name} ${JSON.stringify(c)}: ${JSON.stringify(e)}`).toBeDefined();
        expect(p!.path).toBe(path);
        expect(p!.line).toBeGreaterThan(0);
      }
    });
  }

  it('mount points with .. or . are refused; one with a space is one fstab field (\\040)', () => {
    for (const mp of ['/../etc', '/var/../../etc', '/./x', '/a/..']) {
      expect(errors(layout({ extraFs: `<fsinfo real_dev="/dev/sda1" mp="${mp}" fs="ext4"/>` })).map((p) => p.code), mp).toContain('FERRY_E_LAYOUT_VALUE');
    }
    const l = parseLayout(layout({ extraFs: '<fsinfo line="11" real_dev="/dev/sda1" mp="/srv/my data" fs="ext4" label="my data"/>' }));
    const plan = planDisks(l, disks);
    const line = plan.fstab.split('\n').find((x) => x.includes('/srv/'))!;
    expect(line.split(/\s+/)).toHaveLength(6);
    expect(line).toContain('/srv/my\\040data');
    expect(plan.mounts.map((m) => m.mountpoint)).toContain('/srv/my data');
    const mkfs = plan.steps.find((s) => s.kind === 'mkfs' && s.device === '/dev/vda1')!.argv;
    expect(mkfs).toContain('my data');
  });

  it('mount options with spaces or quotes are refused', () => {
    for (const o of ['defaults ro', 'defaults,"x"', 'a,,b', 'a#b']) {
      expect(errors(layout({ fs: `options="${xmlAttr(o)}"` })).map((p) => p.code), o).toContain('FERRY_E_LAYOUT_VALUE');
    }
    expect(errors(layout({ fs: 'options="defaults,noatime,subvol=@/root,x-systemd.requires=/dev/vda1"' }))).toEqual([]);
  });

  it('fstabField escapes what getmntent reads as a separator', () => {
    expect(fstabField('/a b')).toBe('/a\\040b');
    expect(fstabField('a\\b')).toBe('a\\134b');
    expect(fstabField('#x')).toBe('\\043x');
    expect(fstabField('UUID=1234')).toBe('UUID=1234');
  });
});

describe('the plan names only the disks it owns', () => {
  it('a layout whose commands would name another device is refused at planning', () => {
    const l = parseLayout(layout());
    const plan = planDisks(l, disks);
    expect(foreignDevices(plan)).toEqual([]);
    // Simulate a value that slipped past the parser: the last check still refuses it.
    const bad: DiskPlan = { ...plan, steps: [...plan.steps, { kind: 'mkfs', argv: ['mkfs.ext4', '-J', 'device=/dev/vdb', '/dev/vda2'] }] };
    expect(foreignDevices(bad).map((f) => f.device)).toEqual(['/dev/vdb']);
  });
  it('the only disk a one-disk plan writes is the one given', () => {
    const l = parseLayout(layout({ part: 'p_name="efi" flags="esp"', fs: 'mkfs_opts="-b 4096"' }));
    const plan = planDisks(l, [{ path: '/dev/loop7', size: 4 * GiB, sectorSize: 512 }]);
    for (const s of plan.steps) for (const w of s.argv.slice(1)) if (w.startsWith('/dev/')) expect(w.startsWith('/dev/loop7')).toBe(true);
  });
});

describe('prototype keys are names like any other', () => {
  it('attributes named like Object members are unknown attributes, not values', () => {
    const xml = layout({ part: 'constructor="x" __proto__="y" toString="z"' });
    const w = warnings(xml).filter((p) => p.code === 'FERRY_W_LAYOUT_UNKNOWN_ATTR');
    expect(w.map((p) => p.path).sort()).toEqual(['/config/disk[1]/part[1]/@__proto__', '/config/disk[1]/part[1]/@constructor', '/config/disk[1]/part[1]/@toString'].sort());
    expect(errors(xml)).toEqual([]);
  });
  it('a missing attribute is missing even when Object.prototype has a member of that name', () => {
    // <fsinfo> without options: the default, never Object.prototype.valueOf's text.
    const l = parseLayout(layout());
    expect(l.filesystems[0].options).toBe('defaults');
    expect(optionListProblems(['--constructor', '--__proto__', '--hasOwnProperty'], {}).length).toBe(3);
    expect(mkfsOptionProblems('constructor', ['-x'])).toHaveLength(1);
    expect(mkfsOptionProblems('ext4', ['-E', 'constructor=1'])).toHaveLength(1);
  });
  it('an element named __proto__ or constructor is an ignored element, with its place', () => {
    const w = warnings(layout({ extraFs: '<__proto__ dev="/dev/vdb"/><constructor/>' }));
    expect(w.filter((p) => p.code === 'FERRY_W_LAYOUT_IGNORED').map((p) => p.path)).toEqual(['/config/__proto__[1]', '/config/constructor[1]']);
  });
});

describe('unknown attributes and elements are warnings with a suggestion', () => {
  it('names the attribute and the closest known one', () => {
    const w = warnings(`<config><disk dev="/dev/sda" label_type="gpt" unit_of_measurment="MiB"><part num="1" size="*" flag="boot"/></disk>
      <fsinfo real_dev="/dev/sda1" mp="/" fs="ext4" option="noatime"/></config>`).filter((p) => p.code === 'FERRY_W_LAYOUT_UNKNOWN_ATTR');
    expect(w.map((p) => [p.path, /did you mean (\w+)/.exec(p.message)?.[1]])).toEqual([
      ['/config/disk[1]/@unit_of_measurment', 'unit_of_measurement'],
      ['/config/disk[1]/part[1]/@flag', 'flags'],
      ['/config/fsinfo[1]/@option', 'options'],
    ]);
    expect(w.every((p) => p.line !== undefined && p.hint)).toBe(true);
  });
  it('elements too, and nothing is suggested when nothing is close', () => {
    const w = warnings(layout({ extraFs: '<fsinf real_dev="x"/><bootloadr/><zebra/>' })).filter((p) => p.code === 'FERRY_W_LAYOUT_IGNORED');
    expect(w.map((p) => /did you mean <(\w+)>/.exec(p.message)?.[1])).toEqual(['fsinfo', 'bootloader', undefined]);
    expect(didYouMean('xyzzy', ['flags', 'size'])).toBeUndefined();
  });
  it('the shipped fixtures and layouts have no unknown attributes', async () => {
    const { readdirSync, readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const root = join(import.meta.dirname, '..', '..');
    const files = [
      ...readdirSync(join(root, 'layouts')).filter((f) => f.endsWith('.xml')).map((f) => join(root, 'layouts', f)),
      ...readdirSync(join(root, 'test/fixtures/systemimager-layouts')).filter((f) => f.endsWith('.xml')).map((f) => join(root, 'test/fixtures/systemimager-layouts', f)),
    ];
    expect(files.length).toBeGreaterThan(5);
    for (const f of files) expect(warnings(readFileSync(f, 'utf8')).filter((p) => p.code === 'FERRY_W_LAYOUT_UNKNOWN_ATTR'), f).toEqual([]);
  });
});

describe('fuzzed attribute values: refused, or harmless in every command and file', () => {
  /** Small deterministic generator (mulberry32), so a failure is reproducible. */
  function rng(seed: number): () => number {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const PIECES = [' ', '\t', '\n', '\r', '"', "'", '\\', '#', ',', '=', ':', '/', '..', '-', '--', '/dev/vdb', '/dev/vda', 'select', 'mklabel', '2048s', '-d', 'device=', 'logdev=', '$(x)', ';', '|', '\u0085', '\u2028', '\u0000'.replace('\u0000', '\u0001'), 'é', '😀', 'a', 'root', 'defaults', '-O', '^has_journal', '-b', '4096'];
  const ATTRS: [string, string][] = [
    ['part', 'p_name'], ['fs', 'label'], ['fs', 'mkfs_opts'], ['fs', 'options'], ['fs', 'mount_dev'], ['extraMp', 'mp'], ['extraDev', 'real_dev'], ['extraFs', 'fs'], ['comment', 'comment'],
  ];
  const ESC = (v: string) => xmlAttr(v).replace(/\u0001/g, '&#1;');

  it('300 random layouts: every refusal is coded and placed; every accepted plan keeps its words and lines', () => {
    const next = rng(20261203);
    let accepted = 0;
    for (let i = 0; i < 300; i++) {
      const [where, attr] = ATTRS[Math.floor(next() * ATTRS.length)];
      let v = '';
      const n = 1 + Math.floor(next() * 6);
      for (let k = 0; k < n; k++) v += PIECES[Math.floor(next() * PIECES.length)];
      const a = `${attr}="${ESC(v)}"`;
      const xml =
        where === 'part' ? layout({ part: a })
        : where === 'fs' ? layout({ fs: a })
        : where === 'extraMp' ? layout({ extraFs: `<fsinfo line="11" real_dev="/dev/sda1" fs="ext4" ${a.replace(/^mp="/, 'mp="/x')}/>` })
        : where === 'extraDev' ? layout({ extraFs: `<fsinfo line="11" mp="/mnt" fs="nfs" ${a}/>` })
        : where === 'extraFs' ? layout({ extraFs: `<fsinfo line="11" real_dev="proc" mp="/proc" ${a}/>` })
        : layout({ extraFs: `<fsinfo line="1" ${a}/>` });
      const r = readLayout(xml);
      const errs = r.problems.filter((p) => p.severity === 'error');
      for (const p of errs) {
        expect(p.code, JSON.stringify(v)).toMatch(/^FERRY_E_LAYOUT_[A-Z_]+$/);
        expect(p.path, JSON.stringify(v)).toMatch(p.code === 'FERRY_E_LAYOUT_XML' ? /^\/$/ : /^\/config/);
      }
      if (errs.length) continue;
      let plan: DiskPlan;
      try {
        plan = planDisks(r.layout!, disks);
      } catch (e) {
        // A plan-time refusal (a label too long for ext4, a bad UUID) is coded too.
        expect((e as { code?: string }).code, JSON.stringify(v)).toMatch(/^FERRY_E_/);
        continue;
      }
      accepted++;
      expect(foreignDevices(plan), JSON.stringify(v)).toEqual([]);
      for (const s of plan.steps) for (const w of s.argv) expect(w, JSON.stringify(v)).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
      const parted = plan.steps.find((s) => s.kind === 'partition')!.argv;
      // mklabel + two mkpart of exactly name, start, end (no fs-type hint on these parts), then flags.
      expect(parted.slice(0, 9), JSON.stringify(v)).toEqual(['parted', '-s', '-a', 'none', '/dev/vda', 'unit', 's', 'mklabel', 'gpt']);
      for (const w of parted.slice(9)) expect(w, JSON.stringify(v)).not.toMatch(/\s|^-|["'\\]/);
      const lines = plan.fstab.split('\n').filter((l) => l && !l.startsWith('#'));
      expect(lines.length, JSON.stringify(v)).toBe(r.layout!.filesystems.filter((f) => f.realDev).length);
      for (const l of lines) expect(l.split(/[ \t]+/), JSON.stringify(v)).toHaveLength(6);
      expect(plan.fstab.split('\n').length, JSON.stringify(v)).toBe(2 + r.layout!.filesystems.length + 1);
    }
    // The generator must leave some layouts valid, or the second half would test nothing.
    expect(accepted).toBeGreaterThan(20);
  });
});
