import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseLayout, readLayout } from '../../layout/parse.js';
import { isFerryError, ValidationError, type Problem } from '../../common/errors.js';

const FIX = join(import.meta.dirname, '..', 'fixtures', 'systemimager-layouts');
const fixture = (name: string) => readFileSync(join(FIX, name), 'utf8');

function errors(xml: string): Problem[] {
  return readLayout(xml).problems.filter((p) => p.severity === 'error');
}

describe('SystemImager fixtures', () => {
  const files = readdirSync(FIX).filter((f) => f.endsWith('.xml'));
  it('has all six', () => expect(files).toHaveLength(6));

  it.each(files)('%s reads without errors', (f) => {
    const { layout, problems } = readLayout(fixture(f), { file: f });
    expect(problems.filter((p) => p.severity === 'error')).toEqual([]);
    expect(layout!.disks.length).toBeGreaterThan(0);
    expect(layout!.digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it('01: msdos, MB, extended * with logicals, grub2 legacy', () => {
    const l = parseLayout(fixture('01-simple-msdos-extended-logical-grub2-legacy.xml'));
    const d = l.disks[0];
    expect(d).toMatchObject({ dev: '/dev/sda', label: 'msdos', unit: 'MB', where: { path: '/config/disk[1]', line: 7 } });
    expect(d.parts.map((p) => [p.num, p.type, p.size.text, p.flags])).toEqual([
      [1, 'primary', '500', ['boot']],
      [2, 'extended', '*', []],
      [5, 'logical', '512', ['swap']],
      [6, 'logical', '*', []],
    ]);
    expect(d.parts[0].size.size).toEqual({ kind: 'bytes', bytes: 500_000_000n });
    expect(l.bootloader).toMatchObject({ flavor: 'grub2', installType: 'legacy', defaultEntry: '0', timeout: 2, targets: [{ dev: '/dev/sda' }] });
    expect(l.filesystems.map((f) => [f.line, f.realDev, f.mp, f.fs, f.dump, f.pass])).toEqual([
      [100, '/dev/sda6', '/', 'xfs', 1, 2],
      [101, '/dev/sda5', 'swap', 'swap', 0, 0],
      [102, '/dev/sda1', '/boot', 'ext4', 1, 2],
    ]);
    expect(l.warnings).toEqual([]);
  });

  it('02: MiB and partitions out of num order keep document order', () => {
    const l = parseLayout(fixture('02-complex-msdos-unordered-nums-midstar-MiB.xml'));
    expect(l.disks[0].parts.map((p) => p.num)).toEqual([1, 3, 4, 7, 5, 6, 2]);
    expect(l.disks[0].parts[1].size.size).toEqual({ kind: 'bytes', bytes: 4096n * 1024n * 1024n });
    expect(l.disks[0].parts[1].where.line).toBe(10);
  });

  it('03: gpt with an ESP and fat32, EFI bootloader', () => {
    const l = parseLayout(fixture('03-gpt-efi-esp-fat32-grub2-efi.xml'));
    expect(l.disks[0].label).toBe('gpt');
    expect(l.disks[0].parts[0].flags).toEqual(['esp']);
    expect(l.bootloader).toMatchObject({ installType: 'efi', targets: [{ dev: '/dev/sda1' }] });
    expect(l.filesystems.find((f) => f.mp === '/boot/efi')).toMatchObject({ fs: 'fat32', options: 'umask=0077,shortname=winnt' });
  });

  it('04: RAID1 from raid_dev, LVM on RAID, K sizes, virtual and format="no" lines', () => {
    const l = parseLayout(fixture('04-two-disk-raid1-lvm-over-raid-v5.xml'));
    expect(l.raids.map((a) => [a.name, a.level, a.devices, a.lvmGroup])).toEqual([
      ['/dev/md0', 'raid1', ['/dev/sda3', '/dev/sdb2'], 'systemvg'],
      ['/dev/md1', 'raid1', ['/dev/sda2', '/dev/sdb1'], undefined],
    ]);
    const vg = l.volumeGroups[0];
    expect(vg.extentSize).toBe(4 * 1024 * 1024);
    expect(vg.lvs.map((x) => [x.name, x.size.size])).toContainEqual(['usrlv', { kind: 'bytes', bytes: 5242880n * 1024n }]);
    expect(l.filesystems.find((f) => f.realDev === '/dev/dvd')!.format).toBe(false);
    expect(l.warnings.map((w) => w.code)).toEqual(['FERRY_W_LAYOUT_FSTAB_ONLY', 'FERRY_W_LAYOUT_FSTAB_ONLY', 'FERRY_W_LAYOUT_FSTAB_ONLY']);
    expect(l.warnings[0]).toMatchObject({ line: 65, path: '/config/fsinfo[11]' });
  });

  it('05: 2006 file with IDE names, the phys_exent_size misspelling and <boel>', () => {
    const l = parseLayout(fixture('05-legacy-2006-autoinstallscript-hda-hdc-raid-lvm-boel.xml'));
    expect(l.disks.map((d) => d.dev)).toEqual(['/dev/hda', '/dev/hdc']);
    expect(l.volumeGroups[0].extentSize).toBe(4 * 1024 * 1024);
    expect(l.boel).toEqual({ devstyle: 'static' });
    expect(l.bootloader).toBeUndefined();
    expect(l.warnings.find((w) => w.code === 'FERRY_W_LAYOUT_SPELLING')).toMatchObject({ line: 39, path: '/config/lvm[1]/lvm_group[1]/@phys_exent_size' });
  });

  it('06: generated file without a bootloader', () => {
    const l = parseLayout(fixture('06-systeminstaller-generated-2018-no-bootloader.xml'));
    expect(l.bootloader).toBeUndefined();
    expect(l.filesystems).toHaveLength(3);
  });
});

describe('the flat RAID syntax and Ferry extensions', () => {
  it('reads <raid name devices> and adaptive sizes and disk hints', () => {
    const l = parseLayout(`<config>
  <disk dev="/dev/sda" label_type="gpt" unit_of_measurement="MiB" serial="S1" model="QEMU" min_size="10GiB">
    <part num="1" size="1" flags="bios_grub"/>
    <part num="2" size="20GiB" min_size="4GiB" max_size="40GiB" weight="2"/>
    <part num="3" size="*"/>
  </disk>
  <disk dev="/dev/sdb" label_type="gpt"><part num="1" size="*"/></disk>
  <raid name="/dev/md0" raid_level="mirror" devices="/dev/sda3 /dev/sdb1" chunk_size="64K"/>
  <fsinfo real_dev="/dev/sda2" mp="/" fs="ext4" mount_dev="LABEL=root"/>
  <fsinfo real_dev="/dev/md0" mp="/srv" fs="xfs" label="srv"/>
</config>`);
    expect(l.disks[0].match).toEqual({ serial: 'S1', model: 'QEMU', minSize: 10 * 1024 ** 3 });
    expect(l.disks[0].parts[1].size).toMatchObject({ min: { kind: 'bytes', bytes: 4n * 1024n ** 3n }, max: { kind: 'bytes', bytes: 40n * 1024n ** 3n }, weight: 2 });
    expect(l.raids[0]).toMatchObject({ name: '/dev/md0', level: 'raid1', devices: ['/dev/sda3', '/dev/sdb1'], chunkKiB: 64 });
    expect(l.filesystems[0].label).toBe('root');
    expect(l.filesystems[1].label).toBe('srv');
  });
});

describe('validation reports every problem with path and line', () => {
  it('malformed XML names the line', () => {
    const p = errors('<config>\n<disk dev="/dev/sda">\n<part num="1" size="1"\n</config>');
    expect(p).toHaveLength(1);
    expect(p[0]).toMatchObject({ code: 'FERRY_E_LAYOUT_XML', line: expect.any(Number) });
    expect(p[0].line).toBeGreaterThanOrEqual(3);
  });

  it('a document nested thousands deep is a layout error on the line where it goes too deep, not a stack overflow', () => {
    const deep = '<config>\n' + '<a>\n'.repeat(6000) + '</a>'.repeat(6000) + '\n</config>';
    const t0 = Date.now();
    const p = errors(deep);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(p).toEqual([expect.objectContaining({ code: 'FERRY_E_LAYOUT_XML', line: 65, message: expect.stringMatching(/nested more than 64 deep/) })]);
    // Line numbers stay right on a long flat document (they are counted once, in one pass).
    const flat = '<config>\n' + '<!-- x -->\n'.repeat(20000) + '<disk dev="/dev/sda" label_type="gpt" unit_of_measurement="MB"><part num="1" size="*" p_type="primary" /></disk>\n<bogus/>\n</config>';
    expect(readLayout(flat).problems.find((x) => /bogus/.test(x.message))?.line).toBe(20003);
  });

  it('a wrong root element', () => {
    expect(errors('<layout/>')[0]).toMatchObject({ code: 'FERRY_E_LAYOUT_XML', line: 1 });
  });

  it('collects all problems of a bad file at once', () => {
    const xml = `<config>
  <disk dev="/dev/sda" label_type="msdos" unit_of_measurement="MB">
    <part num="1" size="-5" p_type="primary"/>
    <part num="2" size="*" p_type="primary"/>
    <part num="3" size="*" p_type="primary"/>
    <part num="4" size="12 parsecs" p_type="primary" raid_dev="/dev/md7"/>
    <part num="4" size="10" p_type="primary" lvm_group="nosuchvg"/>
  </disk>
  <fsinfo line="1" real_dev="/dev/sda2" mp="/" fs="ext4"/>
  <fsinfo line="2" real_dev="/dev/sda3" mp="/" fs="ext4"/>
  <fsinfo line="3" real_dev="/dev/sda9" mp="/data" fs="ext4"/>
  <fsinfo line="4" real_dev="/dev/sda1" mp="/x" fs="ntfs3g"/>
  <fsinfo line="5" real_dev="/dev/md3" mp="/y" fs="xfs"/>
  <fsinfo line="6" real_dev="/dev/vg0/root" mp="/z" fs="xfs"/>
  <bootloader flavor="grub2" install_type="legacy"><target dev="/dev/sdz"/></bootloader>
</config>`;
    const { problems } = readLayout(xml);
    const got = problems.filter((p) => p.severity === 'error').map((p) => [p.code, p.line]);
    expect(got).toEqual(expect.arrayContaining([
      ['FERRY_E_LAYOUT_SIZE', 3],
      ['FERRY_E_LAYOUT_SIZE', 6],
      ['FERRY_E_LAYOUT_TWO_FILLS', 5],
      ['FERRY_E_LAYOUT_DUP', 7],
      ['FERRY_E_LAYOUT_REF', 6],
      ['FERRY_E_LAYOUT_REF', 7],
      ['FERRY_E_LAYOUT_DUP_MOUNT', 10],
      ['FERRY_E_LAYOUT_REF', 11],
      ['FERRY_E_LAYOUT_FS_UNKNOWN', 12],
      ['FERRY_E_LAYOUT_REF', 13],
      ['FERRY_E_LAYOUT_REF', 15],
    ]));
    for (const p of problems) expect(p.path).toMatch(/^\/config/);
    let err: unknown;
    try {
      parseLayout(xml, { file: 'bad.xml' });
    } catch (e) {
      err = e;
    }
    expect(isFerryError(err, 'FERRY_E_LAYOUT_INVALID')).toBe(true);
    expect((err as ValidationError).problems.length).toBe(problems.length);
    expect((err as ValidationError).message).toContain('bad.xml: line 10: /config/fsinfo[2]');
  });

  it('msdos rules: one extended, four primaries, logicals need an extended and num >= 5', () => {
    const codes = errors(`<config><disk dev="/dev/sda" label_type="msdos">
      <part num="1" size="1" p_type="primary"/><part num="2" size="1" p_type="extended"/>
      <part num="3" size="1" p_type="extended"/><part num="4" size="1"/><part num="6" size="1" p_type="primary"/>
      <part num="3" size="1" p_type="logical"/></disk></config>`).map((p) => p.code);
    expect(codes.filter((c) => c === 'FERRY_E_LAYOUT_PARTITIONS').length).toBeGreaterThanOrEqual(4);
  });

  it('gpt has no logical partitions', () => {
    expect(errors('<config><disk dev="/dev/sda" label_type="gpt"><part num="5" size="1" p_type="logical"/></disk></config>')[0].code).toBe('FERRY_E_LAYOUT_PARTITIONS');
  });

  it('one * per disk and one per extended partition is fine; two logical * are not', () => {
    expect(errors('<config><disk dev="/dev/sda" label_type="msdos"><part num="1" size="*" p_type="extended"/><part num="5" size="*" p_type="logical"/></disk></config>')).toEqual([]);
    expect(errors('<config><disk dev="/dev/sda" label_type="msdos"><part num="1" size="*" p_type="extended"/><part num="5" size="*" p_type="logical"/><part num="6" size="*" p_type="logical"/></disk></config>')[0].code).toBe('FERRY_E_LAYOUT_TWO_FILLS');
  });

  it('RAID: level, member count, raid_devices count', () => {
    const codes = errors(`<config><disk dev="/dev/sda" label_type="gpt"><part num="1" size="1" raid_dev="/dev/md0"/><part num="2" size="1" raid_dev="/dev/md1"/></disk>
      <raid><raid_disk name="/dev/md0" raid_level="raid1"/><raid_disk name="/dev/md1" raid_level="raid9"/><raid_disk name="/dev/md2" raid_level="1" raid_devices="3" devices="/dev/sda7 /dev/sdq1"/></raid></config>`).map((p) => p.code);
    expect(codes).toEqual(expect.arrayContaining(['FERRY_E_LAYOUT_RAID', 'FERRY_E_LAYOUT_ATTR', 'FERRY_E_LAYOUT_REF']));
  });

  it('a device used twice', () => {
    const p = errors(`<config><disk dev="/dev/sda" label_type="gpt"><part num="1" size="*" lvm_group="vg"/></disk>
      <lvm><lvm_group name="vg"><lv name="a" size="1"/><lv name="a" size="2"/><lv name="b" size="*"/><lv name="c" size="*"/></lvm_group></lvm>
      <fsinfo real_dev="/dev/sda1" mp="/" fs="ext4"/></config>`);
    expect(p.map((x) => x.code)).toEqual(expect.arrayContaining(['FERRY_E_LAYOUT_CONFLICT', 'FERRY_E_LAYOUT_DUP', 'FERRY_E_LAYOUT_TWO_FILLS']));
  });

  it('a layout without disks', () => {
    expect(errors('<config><fsinfo real_dev="proc" mp="/proc" fs="proc"/></config>')[0]).toMatchObject({ code: 'FERRY_E_LAYOUT_ATTR', line: 1 });
  });
});
