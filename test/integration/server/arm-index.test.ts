/**
 * Issue 17/18: the server knows every layer's entries (its layer index) and the node's stored
 * hardware, and checks at arm time what the installer would otherwise find after the disks were
 * written. A real server on loopback, an image imported through bin/ferry from two tars (the upper
 * one with a whiteout), the node's hardware posted by the installer's client with a deploy token:
 * `ferry deploy --check` lists a bad placeholder, a missing regexp path and a too-small disk
 * together, the admin API's arm route refuses with the same list, a hw.disk.serial hint says which
 * disk it maps to, an index deleted by hand is built again from the blob, and gc removes it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_ROUTES, type ArmResponse } from '../../../common/protocol.js';
import { run } from '../../../common/run.js';
import { addNode } from '../../../server/db/inventory.js';
import { decodeIndex } from '../../../layers/path-index.js';
import { ServerClient } from '../../../installer/client.js';
import { buildInventory } from '../../../installer/inventory/parse.js';
import { call, harness, LAYOUT, smallTree, type Harness } from './helpers.js';

const FERRY = join(import.meta.dirname, '..', '..', '..', 'bin', 'ferry');
const FIX = join(import.meta.dirname, '..', '..', 'fixtures', 'inventory', 'dell-r640');
const dell = () =>
  buildInventory({ dmidecode: readFileSync(join(FIX, 'dmidecode.txt'), 'utf8'), cpuinfo: readFileSync(join(FIX, 'cpuinfo.txt'), 'utf8'), lsblk: readFileSync(join(FIX, 'lsblk.json'), 'utf8'), sysnet: JSON.parse(readFileSync(join(FIX, 'sysnet.json'), 'utf8')), efi: true });

// 600 GB of partitions: more than the Dell's 480 GB /dev/sda.
const BIG = LAYOUT.replace('size="*"', 'size="600000"');
const BY_SERIAL = LAYOUT.replace('unit_of_measurement="MB"', 'unit_of_measurement="MB" hw="hw.disk.serial=S4EMNA0N204512"');

type Report = { ok: boolean; nodes: { node: string; disks?: { layoutDisk: string; disk: string; serial?: string }[]; problems: { severity: string; code: string; message: string; path?: string }[] }[] };

describe('arm-time checks against the layer index and the stored hardware', () => {
  let h: Harness;
  const ferry = (args: string[], okCodes = [0]) => run([FERRY, ...args, '--data', h.dataDir], { okCodes, timeoutMs: 120_000 });
  const indexRows = () => h.data.db.prepare('SELECT digest, paths FROM layer_index ORDER BY digest').all() as { digest: string; paths: Buffer }[];

  beforeAll(async () => {
    h = await harness();
    const lower = join(h.tmp, 'lower');
    const upper = join(h.tmp, 'upper');
    mkdirSync(join(lower, 'etc', 'ssh'), { recursive: true });
    writeFileSync(join(lower, 'etc', 'ssh', 'sshd_config'), 'PermitRootLogin yes\n');
    writeFileSync(join(lower, 'etc', 'motd'), 'hello\n');
    writeFileSync(join(lower, 'etc', 'hostname'), 'master\n');
    mkdirSync(join(upper, 'etc'), { recursive: true });
    writeFileSync(join(upper, 'etc', '.wh.motd'), '');
    await run(['tar', '-C', lower, '-cf', join(h.tmp, 'lower.tar'), '.']);
    await run(['tar', '-C', upper, '-cf', join(h.tmp, 'upper.tar'), '.']);
    writeFileSync(join(h.tmp, 'items.json'), JSON.stringify([
      { kind: 'template', path: '/etc/ntp.conf', template: 'server {{ ntp.sever }}\n' },
      { kind: 'regexp', path: '/etc/ssh/sshd_confg', pattern: '^PermitRootLogin .*$', replacement: 'PermitRootLogin no' },
      { kind: 'regexp', path: '/etc/motd', pattern: 'hello', replacement: 'hi {{ node.name }}' },
      { kind: 'regexp', path: '/etc/ssh/sshd_config', pattern: '^PermitRootLogin .*$', replacement: 'PermitRootLogin no' },
    ]));
    await ferry(['image', 'import', 'web', '--tar', join(h.tmp, 'lower.tar'), '--tar', join(h.tmp, 'upper.tar'), '--customizations', join(h.tmp, 'items.json'), '--set', 'ntp.server=192.0.2.1']);
    await ferry(['image', 'import', 'plain', '--dir', smallTree(join(h.tmp, 'plain'))]);
    writeFileSync(join(h.tmp, 'big.xml'), BIG);
    writeFileSync(join(h.tmp, 'serial.xml'), BY_SERIAL);
    addNode(h.data, 'r640', { macs: ['e4:43:4b:1c:2a:10'], image: 'plain', layoutXml: LAYOUT }, 'test');
    // The node reports its hardware as the installer does: with the token of a deployment.
    const armed = await call(h.srv.url, 'POST', ADMIN_ROUTES.deployments, { token: h.srv.adminToken, body: { node: 'r640' } });
    expect(armed.status).toBe(201);
    await new ServerClient({ server: h.srv.url, token: (armed.json as ArmResponse).deployment.token }).postInventory(dell());
    await ferry(['cancel', 'r640']);
  });
  afterAll(() => h?.close());

  it('every imported layer has its index, with the whiteout as an entry', () => {
    const rows = indexRows();
    expect(rows).toHaveLength(3);
    const all = rows.map((r) => decodeIndex(r.paths).map((e) => e.path));
    expect(all.some((p) => p.includes('etc/ssh/sshd_config') && p.includes('etc/motd'))).toBe(true);
    expect(all.some((p) => p.includes('etc/.wh.motd'))).toBe(true);
  });

  it('deploy --check lists a bad placeholder, a missing regexp path, a whited-out file and a too-small disk together, and arms nothing', async () => {
    const r = await ferry(['deploy', '--check', 'r640', '--image', 'web', '--layout', join(h.tmp, 'big.xml'), '--json'], [1]);
    const rep = JSON.parse(r.stdout) as Report;
    expect(rep.ok).toBe(false);
    const problems = rep.nodes[0].problems.filter((p) => p.severity === 'error');
    expect(problems.map((p) => [p.code, p.path ?? ''])).toEqual(expect.arrayContaining([
      ['FERRY_E_LAYOUT_TOO_BIG', '/config/disk[1]'],
      ['FERRY_E_ARM_PLACEHOLDER', 'customizations[0].template'],
      ['FERRY_E_ARM_IMAGE_PATH', 'customizations[1].path'],
      ['FERRY_E_ARM_IMAGE_PATH', 'customizations[2].path'],
    ]));
    expect(problems).toHaveLength(4);
    const msg = (path: string) => problems.find((p) => p.path === path)!.message;
    expect(msg('customizations[0].template')).toContain('did you mean {{ ntp.server }}');
    expect(msg('customizations[1].path')).toContain('holds no /etc/ssh/sshd_confg (did you mean /etc/ssh/sshd_config?)');
    expect(msg('customizations[2].path')).toContain('holds no /etc/motd');
    expect(problems.find((p) => p.code === 'FERRY_E_LAYOUT_TOO_BIG')!.message).toContain('/dev/sda has');
    expect(JSON.parse((await ferry(['history', '--json'])).stdout).map((x: { status: string }) => x.status)).toEqual(['cancelled']);
  });

  it('the admin API refuses to arm with the same list; nothing is armed', async () => {
    const r = await call(h.srv.url, 'POST', ADMIN_ROUTES.deployments, { token: h.srv.adminToken, body: { node: 'r640', image: 'web', layout: BIG } });
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('FERRY_E_DEPLOY_CHECK');
    expect(r.text).toContain('FERRY_E_ARM_PLACEHOLDER');
    expect(r.text).toContain('FERRY_E_ARM_IMAGE_PATH');
    expect(r.text).toContain('FERRY_E_LAYOUT_TOO_BIG');
    expect(JSON.parse((await ferry(['history', '--json'])).stdout)).toHaveLength(1);
  });

  it('a hw.disk.serial hint maps the layout disk onto the stored disk carrying it, and says so', async () => {
    const r = await ferry(['deploy', '--check', 'r640', '--layout', join(h.tmp, 'serial.xml'), '--json']);
    const rep = JSON.parse(r.stdout) as Report;
    expect(rep.ok).toBe(true);
    expect(rep.nodes[0].disks).toEqual([{ layoutDisk: '/dev/sda', disk: '/dev/nvme0n1', size: 1600321314816, serial: 'S4EMNA0N204512' }]);
    expect(rep.nodes[0].problems.map((p) => p.code)).not.toContain('FERRY_W_ARM_NO_HARDWARE');
    const text = await ferry(['deploy', '--check', 'r640', '--layout', join(h.tmp, 'serial.xml')]);
    expect(text.stdout).toContain('disk /dev/sda -> /dev/nvme0n1 (');
    expect(text.stdout).toContain('serial S4EMNA0N204512');
  });

  it('an index deleted by hand (a layer stored before the index existed) is built again from the blob', async () => {
    const before = indexRows();
    h.data.db.prepare('DELETE FROM layer_index').run();
    const r = await ferry(['deploy', '--check', 'r640', '--image', 'web', '--json'], [1]);
    expect((JSON.parse(r.stdout) as Report).nodes[0].problems.map((p) => p.code)).toContain('FERRY_E_ARM_IMAGE_PATH');
    const after = indexRows();
    // The two layers of "web" again, the same entries; "plain" was not asked for.
    expect(after).toHaveLength(2);
    for (const a of after) expect(decodeIndex(a.paths)).toEqual(decodeIndex(before.find((b) => b.digest === a.digest)!.paths));
    // A row of an older encoding is built again too, not read.
    h.data.db.prepare('UPDATE layer_index SET format = 0, paths = ?').run(Buffer.alloc(0));
    await ferry(['deploy', '--check', 'r640', '--image', 'web', '--json'], [1]);
    const again = h.data.db.prepare('SELECT digest, format, paths FROM layer_index ORDER BY digest').all() as { digest: string; format: number; paths: Buffer }[];
    expect(again.map((r) => r.format)).toEqual([1, 1]);
    for (const a of again) expect(decodeIndex(a.paths)).toEqual(decodeIndex(before.find((b) => b.digest === a.digest)!.paths));
  });

  it('gc removes a layer\'s index with its blob', async () => {
    // The node's own image ("plain") is indexed again by a check of it, and stays.
    await ferry(['deploy', '--check', 'r640']);
    const plain = (h.data.db.prepare("SELECT l.digest FROM image_layers l JOIN images i ON i.id = l.image_id WHERE i.name = 'plain'").get() as { digest: string }).digest;
    expect(indexRows().map((r) => r.digest)).toContain(plain);
    expect(indexRows()).toHaveLength(3);
    await ferry(['image', 'rm', 'web']);
    await ferry(['image', 'gc']);
    expect(indexRows().map((r) => r.digest)).toEqual([plain]);
    expect(h.data.db.prepare('SELECT COUNT(*) AS n FROM layers').get()).toEqual({ n: 1 });
  });
});
