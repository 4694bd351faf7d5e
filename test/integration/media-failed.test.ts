/**
 * A failed medium install keeps its record, and a medium's token can be revoked. A medium whose
 * layer is corrupted fails in the config stage (no disk written); the installer then posts the
 * failed record at once when the medium's server answers; when it does not, it writes the record
 * into the records area of the medium's device (a loop device the ISO was written onto, as onto
 * a stick), and `ferry media records DEV` brings it into `ferry history`, once. `ferry media
 * revoke ID` makes the server refuse the medium's records (FERRY_E_MEDIUM_REVOKED), posted or
 * imported.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fdReader, readRecordArea } from '../../common/medium-records.js';
import { RECORD_FILE, REPORT_HEADER_FILE, REPORT_SCRIPT, REPORT_UNIT, type MediumManifest } from '../../common/medium.js';
import { writeOfflineRecord } from '../../installer/medium-record.js';
import { TargetRoot } from '../../layers/target.js';
import { run } from '../../common/run.js';
import { readMedium } from '../../installer/medium.js';
import { deploymentEvents } from '../../server/db/deployment-events.js';
import { listDeployments } from '../../server/db/deployments.js';
import { buildMedium } from '../../server/media/build.js';
import { FerryServer } from './helpers/ferry-server.js';
import { busyboxImage } from './helpers/images.js';
import { call, LAYOUT } from './server/helpers.js';

const ROOT = path.join(import.meta.dirname, '..', '..');
const FERRY = path.join(ROOT, 'build', 'ferry.mjs');
let s: FerryServer;
let boot: string;
const loops: string[] = [];

/** The medium's files (as the boot environment mounts them), with the last layer's middle byte flipped. */
async function damagedFiles(from: string, x: string): Promise<MediumManifest> {
  await run(['xorriso', '-osirrox', 'on', '-indev', from.startsWith('/dev/') ? `stdio:${from}` : from, '-extract', '/', x], { quiet: true });
  await run(['chmod', '-R', 'u+w', x]);
  const m = readMedium(x);
  // A damaged medium: the last layer's middle byte flipped.
  const bad = path.join(x, m.layers[m.layers.length - 1].path);
  const b = fs.readFileSync(bad);
  b[Math.floor(b.length / 2)] ^= 0xff;
  fs.writeFileSync(bad, b);
  return m;
}

async function medium(name: string, server: string, hostname: string): Promise<{ iso: string; x: string; m: MediumManifest; id: number }> {
  const iso = path.join(s.tmp, `${name}.iso`);
  const r = await buildMedium(s.data, { out: iso, image: 'mini', layoutXml: LAYOUT, set: { hostname }, server, label: name.toUpperCase(), unattended: true, bootDir: boot });
  const x = path.join(s.tmp, `x-${name}`);
  const m = await damagedFiles(iso, x);
  return { iso, x, m, id: r.medium };
}

async function stick(iso: string, name: string): Promise<string> {
  const f = path.join(s.tmp, `${name}.img`);
  fs.writeFileSync(f, '');
  fs.truncateSync(f, fs.statSync(iso).size + (4 << 20));
  const dev = (await run(['losetup', '-f', '--show', f])).stdout.trim();
  loops.push(dev);
  await run(['node', FERRY, 'media', 'write', '--iso', iso, '--disk', dev, '--yes', '--data', s.dataDir], { timeoutMs: 120_000 });
  return dev;
}

const install = (x: string, dst: string, device: string) =>
  run(['node', FERRY, 'install', '--medium', x, '--medium-device', device, '--root', dst, '--no-initramfs'], { timeoutMs: 180_000, okCodes: [1] });

beforeAll(async () => {
  s = await FerryServer.start();
  const tree = path.join(s.tmp, 'tree');
  busyboxImage(tree);
  await s.image('mini', tree);
  boot = path.join(s.tmp, 'boot');
  fs.mkdirSync(boot);
  fs.writeFileSync(path.join(boot, 'vmlinuz'), 'kernel');
  fs.writeFileSync(path.join(boot, 'initrd.img'), 'initrd');
}, 300_000);

afterAll(async () => {
  for (const l of loops) await run(['losetup', '-d', l], { okCodes: [0, 1] });
  await s?.close();
});

describe('a failed medium install keeps its record', () => {
  it('posts the failed record to the medium\'s server at once; the medium stays as it was', async () => {
    const { iso, x, m } = await medium('fail-online', s.url, 'failed1');
    const before = fs.readFileSync(iso);
    const dst = path.join(s.tmp, 'dst1');
    fs.mkdirSync(dst);
    const r = await install(x, dst, iso);
    expect(r.stderr).toContain('FERRY INSTALL FAILED in stage "config"');
    expect(r.stderr).toContain('FERRY_E_MEDIUM_LAYER_BAD');
    expect(r.stderr).toMatch(/the failed install's record was posted to http:\/\/\S+ \(deployment \d+; ferry history failed1\)/);
    const list = listDeployments(s.data).filter((d) => d.node === 'failed1');
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ status: 'failed', createdBy: 'medium:FAIL-ONLINE', image: 'mini@1' });
    expect(list[0].error).toMatchObject({ code: 'FERRY_E_MEDIUM_LAYER_BAD', phase: 'config' });
    const ev = deploymentEvents(s.data, list[0].id);
    expect(ev.some((e) => e.phase === 'config' && e.state === 'error' && e.code === 'FERRY_E_MEDIUM_LAYER_BAD')).toBe(true);
    expect(m.server).toBe(s.url);
    // Posted: nothing written onto the medium.
    expect(fs.readFileSync(iso).equals(before)).toBe(true);
    const h = await run(['node', FERRY, 'history', 'failed1', '--data', s.dataDir], { timeoutMs: 60_000 });
    expect(h.stdout).toMatch(/failed1\s+mini@1\s+medium\s+failed/);
  });

  it('with the server unreachable, writes the record onto the stick; ferry media records brings it to the history once; revoke refuses it', async () => {
    // Port 9 (discard) on loopback: nothing listens, the post fails fast and the retry gives up.
    const { iso, x, m, id } = await medium('fail-offline', 'http://127.0.0.1:9', 'failed2');
    const dev = await stick(iso, 'stick');
    const dst = path.join(s.tmp, 'dst2');
    fs.mkdirSync(dst);
    const r = await install(x, dst, dev);
    expect(r.stderr).toContain('could not post the install record to http://127.0.0.1:9');
    expect(r.stderr).toContain(`the install record was written onto the medium ${dev} (records slot 1); \`ferry media records ${dev}\``);
    expect(listDeployments(s.data).filter((d) => d.node === 'failed2')).toHaveLength(0);
    const fd = fs.openSync(dev, 'r');
    const area = readRecordArea(fdReader(fd))!;
    fs.closeSync(fd);
    expect(area.records).toHaveLength(1);
    expect(area.records[0].record).toMatchObject({ node: 'failed2', status: 'failed', error: { code: 'FERRY_E_MEDIUM_LAYER_BAD', phase: 'config' }, layout: { xml: '', digest: m.layout.digest } });
    // A second failure goes into the next slot.
    const r2 = await install(x, dst, dev);
    expect(r2.stderr).toContain('(records slot 2)');

    const imp = await run(['node', FERRY, 'media', 'records', dev, '--json', '--data', s.dataDir], { timeoutMs: 60_000 });
    const got = JSON.parse(imp.stdout);
    expect(got.records).toHaveLength(2);
    expect(got.records.map((x: { status: string; duplicate: boolean }) => [x.status, x.duplicate])).toEqual([['failed', false], ['failed', false]]);
    const list = listDeployments(s.data).filter((d) => d.node === 'failed2');
    expect(list).toHaveLength(2);
    expect(list[0]).toMatchObject({ status: 'failed', createdBy: 'medium:FAIL-OFFLINE' });
    const again = JSON.parse((await run(['node', FERRY, 'media', 'records', dev, '--json', '--data', s.dataDir], { timeoutMs: 60_000 })).stdout);
    expect(again.records.every((x: { duplicate: boolean }) => x.duplicate)).toBe(true);
    expect(listDeployments(s.data).filter((d) => d.node === 'failed2')).toHaveLength(2);

    // Revoked: the import and a post with the medium's token are refused with a stable code.
    const ls = JSON.parse((await run(['node', FERRY, 'media', 'list', '--json', '--data', s.dataDir], { timeoutMs: 60_000 })).stdout);
    expect(ls.find((x: { id: number }) => x.id === id)).toMatchObject({ label: 'FAIL-OFFLINE', node: 'failed2', records: 2, revokedAt: null });
    const rv = await run(['node', FERRY, 'media', 'revoke', String(id), '--data', s.dataDir], { timeoutMs: 60_000 });
    expect(rv.stderr).toContain(`medium ${id} (FAIL-OFFLINE, node failed2) revoked`);
    const refused = await run(['node', FERRY, 'media', 'records', dev, '--data', s.dataDir], { timeoutMs: 60_000, okCodes: [1] });
    expect(refused.stderr).toContain('FERRY_E_MEDIUM_REVOKED');
    const rec = { ...area.records[0].record, id: '00000000-0000-4000-8000-00000000000a', layout: m.layout };
    const post = await call(s.url, 'POST', '/api/v1/media/record', { token: m.token, body: rec });
    expect(post.status).toBe(403);
    expect(JSON.stringify(post.json)).toContain('FERRY_E_MEDIUM_REVOKED');
    expect(listDeployments(s.data).filter((d) => d.node === 'failed2')).toHaveLength(2);
    expect((await run(['node', FERRY, 'media', 'revoke', '999', '--data', s.dataDir], { timeoutMs: 60_000, okCodes: [1] })).stderr).toContain('FERRY_E_NOT_FOUND');
    // A system installed from the revoked medium: its first-boot unit gives up for good (no retry every minute), the record stays.
    for (const client of ['bash', 'curl', 'wget']) {
      const t = path.join(s.tmp, `revoked-${client}`);
      fs.mkdirSync(t);
      writeOfflineRecord(new TargetRoot(t), { ...m, server: s.url }, [], new Date().toISOString());
      const u = await run(['bash', path.join(t, REPORT_SCRIPT)], { env: { FERRY_ROOT: t, FERRY_REPORT_CLIENT: client }, timeoutMs: 60_000 });
      expect(u.stderr, client).toContain('the medium\'s token was revoked (FERRY_E_MEDIUM_REVOKED)');
      expect(fs.existsSync(path.join(t, REPORT_UNIT)), client).toBe(false);
      expect(fs.existsSync(path.join(t, REPORT_HEADER_FILE)), client).toBe(false);
      expect(fs.existsSync(path.join(t, RECORD_FILE)), client).toBe(true);
    }
    expect(listDeployments(s.data).filter((d) => d.node === 'failed2')).toHaveLength(2);
  });

  it('the first network contact: the next install from the stick that reaches the server posts the records it kept, and clears them', async () => {
    const { iso, x } = await medium('fail-later', 'http://127.0.0.1:9', 'failed3');
    const dev = await stick(iso, 'stick3');
    const dst = path.join(s.tmp, 'dst3');
    fs.mkdirSync(dst);
    expect((await install(x, dst, dev)).stderr).toContain('(records slot 1)');
    expect(listDeployments(s.data).filter((d) => d.node === 'failed3')).toHaveLength(0);
    // The stick now reports to the running server (as after moving it to a networked site).
    await run(['node', FERRY, 'media', 'customize', dev, '--server', s.url, '--data', s.dataDir], { timeoutMs: 120_000 });
    const x2 = path.join(s.tmp, 'x-fail-later-2');
    await damagedFiles(dev, x2);
    const r = await install(x2, dst, dev);
    expect(r.stderr).toContain(`posted 1 of the 1 install record(s) the medium kept to ${s.url} and cleared them from the medium`);
    expect(r.stderr).toMatch(/the failed install's record was posted to/);
    const list = listDeployments(s.data).filter((d) => d.node === 'failed3');
    expect(list).toHaveLength(2);
    expect(list.every((d) => d.status === 'failed' && d.createdBy === 'medium:FAIL-LATER')).toBe(true);
    const fd = fs.openSync(dev, 'r');
    expect(readRecordArea(fdReader(fd))!.records).toHaveLength(0);
    fs.closeSync(fd);
  });
});
