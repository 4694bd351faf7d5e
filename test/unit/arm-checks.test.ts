/** Issue 17/18: the arm-time checks of customization items and of the node's stored hardware (pure). */
import { describe, expect, it } from 'vitest';
import { inventoryProperties, storedDisks, type Inventory } from '../../common/inventory.js';
import { placeholders, templateValues } from '../../common/template.js';
import { ImageTree, type IndexEntry } from '../../layers/path-index.js';
import { matches, parseHwHints } from '../../layout/mapping.js';
import { readLayout } from '../../layout/parse.js';
import { armChecks, customizationProblems, nearPath } from '../../layout/preflight.js';
import { renderTemplate } from '../../installer/customize/plan.js';

const f = (path: string): IndexEntry => ({ path, type: 'file' });
const dir = (path: string): IndexEntry => ({ path, type: 'dir' });
const tree = new ImageTree([
  [dir('etc'), f('etc/motd'), f('etc/hosts'), dir('etc/ssh'), f('etc/ssh/sshd_config'), f('etc/issue'), dir('etc/default'), f('etc/default/grub')],
  // A later layer removes /etc/issue.
  [f('etc/.wh.issue')],
]);
const values = templateValues({ name: 'web1', macs: ['52:54:00:00:00:01'], properties: { rack: 'r1' } }, { 'ntp.server': '192.0.2.1' });

describe('template placeholders', () => {
  it('finds each name once, spaces allowed, as the installer renders them', () => {
    expect(placeholders('a {{ntp.server}} b {{ node.name }} {{ntp.server}}')).toEqual(['ntp.server', 'node.name']);
    expect(renderTemplate('{{ node.rack }}/{{hostname}}', values, '/x')).toBe('r1/web1');
  });
});

describe('customization items against the image and the node', () => {
  it('a placeholder without a value is an error naming the item and a close name', () => {
    const p = customizationProblems([{ kind: 'template', path: '/etc/ntp.conf', template: 'server {{ ntp.sever }}\n{{ node.rack }}' }], values, tree);
    expect(p).toMatchObject([{ severity: 'error', code: 'FERRY_E_ARM_PLACEHOLDER', path: 'customizations[0].template' }]);
    expect(p[0].message).toContain('{{ ntp.sever }}');
    expect(p[0].message).toContain('did you mean {{ ntp.server }}');
    expect(customizationProblems([{ kind: 'regexp', path: '/etc/motd', pattern: 'x', replacement: '{{ nope }}' }], values, tree)).toMatchObject([{ code: 'FERRY_E_ARM_PLACEHOLDER', path: 'customizations[0].replacement' }]);
  });

  it('a regexp item on a file the image lacks is an error with the closest path; a whited-out file counts as missing', () => {
    const p = customizationProblems([
      { kind: 'regexp', path: '/etc/ssh/sshd_confg', pattern: 'a', replacement: 'b' },
      { kind: 'regexp', path: '/etc/issue', pattern: 'a', replacement: 'b' },
      { kind: 'regexp', path: '/etc/ssh', pattern: 'a', replacement: 'b' },
      { kind: 'regexp', path: '/etc/default/grub', pattern: 'a', replacement: 'b' },
    ], values, tree, 'image web@2');
    expect(p.map((x) => [x.code, x.path])).toEqual([
      ['FERRY_E_ARM_IMAGE_PATH', 'customizations[0].path'],
      ['FERRY_E_ARM_IMAGE_PATH', 'customizations[1].path'],
      ['FERRY_E_ARM_IMAGE_PATH', 'customizations[2].path'],
    ]);
    expect(p[0].message).toBe('regexp item 1 (/etc/ssh/sshd_confg): image web@2 holds no /etc/ssh/sshd_confg (did you mean /etc/ssh/sshd_config?)');
    expect(p[1].message).toContain('holds no /etc/issue');
    expect(p[2].message).toContain('is a directory');
  });

  it('a regexp item after a file item that creates the file is fine; file items onto a directory or into a missing directory', () => {
    expect(customizationProblems([{ kind: 'file', path: '/etc/new.conf', content: 'x' }, { kind: 'regexp', path: '/etc/new.conf', pattern: 'x', replacement: 'y' }], values, tree)).toEqual([]);
    const p = customizationProblems([{ kind: 'file', path: '/etc/ssh', content: 'x' }, { kind: 'file', path: '/etc/defualt/new', content: 'x' }, { kind: 'file', path: '/etc/motd/x', content: 'x' }], values, tree);
    expect(p.map((x) => [x.severity, x.code])).toEqual([['error', 'FERRY_E_ARM_IMAGE_PATH'], ['warning', 'FERRY_W_ARM_IMAGE_DIR'], ['error', 'FERRY_E_ARM_IMAGE_PATH']]);
    expect(p[1].message).toContain('did you mean /etc/default?');
  });

  it('without an index only the placeholders are checked', () => {
    expect(customizationProblems([{ kind: 'regexp', path: '/nope', pattern: 'a', replacement: 'b' }], values)).toEqual([]);
  });

  it('nearPath corrects each missing component, only to a path that exists', () => {
    expect(nearPath(tree, '/etx/ssh/sshd_config')).toBe('/etc/ssh/sshd_config');
    expect(nearPath(tree, '/etc/motd')).toBeUndefined();
    expect(nearPath(tree, '/completely/else')).toBeUndefined();
  });
});

describe('hw.disk.* hints (issue 18)', () => {
  it('parse into the planner\'s hints; a bad key is named with a close one', () => {
    expect(parseHwHints('hw.disk.serial=S1 hw.disk.size>=400GB,hw.disk.model=PM983')).toEqual({ match: { serial: 'S1', minSize: 400e9, model: 'PM983' }, problems: [] });
    expect(parseHwHints('hw.disk.size=1TB').match).toEqual({ minSize: 1e12, maxSize: 1e12 });
    expect(parseHwHints('hw.disk.sreial=S1').problems[0]).toContain('did you mean hw.disk.serial?');
    expect(parseHwHints('hw.disk.serial>=S1 hw.disk.size>=big').problems).toHaveLength(2);
    expect(matches({ path: '/dev/sda', size: 2e12, sectorSize: 512 }, { maxSize: 1e12 })).toBe(false);
  });

  it('a layout reads them from the hw attribute; a hint given twice differently is an error', () => {
    const ok = readLayout('<config><disk dev="/dev/sda" label_type="gpt" hw="hw.disk.wwn=0x5000c500a1b2c3d4"><part num="1" size="*"/></disk><fsinfo real_dev="/dev/sda1" mp="/" fs="ext4"/></config>');
    expect(ok.layout?.disks[0].match).toEqual({ wwn: '0x5000c500a1b2c3d4' });
    const bad = readLayout('<config><disk dev="/dev/sda" label_type="gpt" serial="A" hw="hw.disk.serial=B hw.disk.colour=red"><part num="1" size="*"/></disk><fsinfo real_dev="/dev/sda1" mp="/" fs="ext4"/></config>');
    expect(bad.problems.filter((p) => p.severity === 'error').map((p) => p.code)).toEqual(['FERRY_E_LAYOUT_ATTR', 'FERRY_E_LAYOUT_ATTR']);
  });
});

describe('arm-time checks against the node\'s stored hardware', () => {
  const inv: Inventory = {
    system: {}, firmware: { mode: 'uefi' }, cpu: { sockets: 1, cores: 2, threads: 4 }, memoryBytes: 8 * 2 ** 30, nics: [],
    disks: [
      { path: '/dev/sda', sizeBytes: 4 * 2 ** 30, serial: 'SMALL1', rotational: true },
      { path: '/dev/nvme0n1', sizeBytes: 512 * 2 ** 30, serial: 'S3Z1NB0K', model: 'SAMSUNG MZQLB960', rotational: false },
    ],
  };
  const props = inventoryProperties(inv);
  const layout = (hw: string, size = '20000') => `<config><disk dev="/dev/sda" label_type="gpt" unit_of_measurement="MB"${hw}><part num="1" size="${size}" p_name="root"/><part num="2" size="*"/></disk><fsinfo real_dev="/dev/sda1" mp="/" fs="ext4"/></config>`;

  it('the stored hw.* properties read back as the node\'s disks', () => {
    expect(storedDisks(props)).toEqual([
      { path: '/dev/sda', size: 4 * 2 ** 30, sectorSize: 512, serial: 'SMALL1', wwn: undefined, model: undefined, byPath: undefined },
      { path: '/dev/nvme0n1', size: 512 * 2 ** 30, sectorSize: 512, serial: 'S3Z1NB0K', wwn: undefined, model: 'SAMSUNG MZQLB960', byPath: undefined },
    ]);
    expect(storedDisks({ rack: 'r1' })).toBeUndefined();
  });

  it('a hw.disk.serial hint resolves to the disk carrying it, and says which', () => {
    const r = armChecks({ layoutXml: layout(' hw="hw.disk.serial=S3Z1NB0K"'), hardware: storedDisks(props) });
    expect(r.problems.filter((p) => p.severity === 'error')).toEqual([]);
    expect(r.disks).toEqual([{ layoutDisk: '/dev/sda', disk: '/dev/nvme0n1', size: 512 * 2 ** 30, serial: 'S3Z1NB0K' }]);
  });

  it('a layout too big for the disk it maps to, and a hint no disk matches, are errors, listed with the items\' problems', () => {
    const small = armChecks({
      layoutXml: layout(''), hardware: storedDisks(props),
      customizations: [{ kind: 'template', path: '/etc/x', template: '{{ missing }}' }], templateValues: values, tree,
    });
    const codes = small.problems.filter((p) => p.severity === 'error').map((p) => p.code);
    expect(codes.sort()).toEqual(['FERRY_E_ARM_PLACEHOLDER', 'FERRY_E_LAYOUT_TOO_BIG']);
    expect(small.problems.find((p) => p.code === 'FERRY_E_LAYOUT_TOO_BIG')!.message).toContain('/dev/sda has 4292870144 bytes');
    const nomatch = armChecks({ layoutXml: layout(' hw="hw.disk.serial=NOPE"'), hardware: storedDisks(props) });
    expect(nomatch.problems.filter((p) => p.severity === 'error').map((p) => p.code)).toEqual(['FERRY_E_DISK_NO_MATCH']);
  });
});
