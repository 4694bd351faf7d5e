/**
 * Offline installs keep their record: a medium built with `--server URL` (a real server on
 * loopback) installs into --root with no network use, writes the events and result into the
 * installed system, and leaves a first-boot unit and script; the script, run against the
 * installed tree (FERRY_ROOT), posts the record with the medium's own token, after which the
 * record is a deployment record (`ferry history`), the unit, script and token are gone, and a
 * repeated post is stored once. The medium's token opens that route and nothing else.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RECORD_FILE, REPORT_HEADER_FILE, REPORT_SCRIPT, REPORT_UNIT, REPORT_UNIT_LINK, type InstallRecord, type MediumManifest } from '../../common/medium.js';
import { run } from '../../common/run.js';
import { listDeployments } from '../../server/db/deployments.js';
import { deploymentEvents } from '../../server/db/deployment-events.js';
import { buildMedium } from '../../server/media/build.js';
import { readMedium } from '../../installer/medium.js';
import { writeOfflineRecord } from '../../installer/medium-record.js';
import { TargetRoot } from '../../layers/target.js';
import { busyboxImage } from './helpers/images.js';
import { FerryServer } from './helpers/ferry-server.js';
import { call, LAYOUT } from './server/helpers.js';

const ROOT = path.join(import.meta.dirname, '..', '..');
const FERRY = path.join(ROOT, 'build', 'ferry.mjs');
let s: FerryServer;
let medium: string;
let dst: string;
let m: MediumManifest;

beforeAll(async () => {
  s = await FerryServer.start();
  const tree = path.join(s.tmp, 'tree');
  busyboxImage(tree);
  await s.image('mini', tree);
  // What boots is the vm tier's concern: stand-in kernel and initrd files are enough here.
  const boot = path.join(s.tmp, 'boot');
  fs.mkdirSync(boot);
  fs.writeFileSync(path.join(boot, 'vmlinuz'), 'kernel');
  fs.writeFileSync(path.join(boot, 'initrd.img'), 'initrd');
  const iso = path.join(s.tmp, 'm.iso');
  await buildMedium(s.data, { out: iso, image: 'mini', layoutXml: LAYOUT, set: { hostname: 'offline1' }, server: s.url, label: 'FERRY-REC', unattended: true, bootDir: boot });
  medium = path.join(s.tmp, 'medium');
  await run(['xorriso', '-osirrox', 'on', '-indev', iso, '-extract', '/', medium], { quiet: true });
  await run(['chmod', '-R', 'u+w', medium]);
  m = readMedium(medium);
  dst = path.join(s.tmp, 'dst');
  fs.mkdirSync(dst);
  await run(['node', FERRY, 'install', '--medium', medium, '--root', dst, '--no-initramfs'], { timeoutMs: 120_000 });
}, 300_000);

afterAll(async () => {
  await s?.close();
});

describe('offline install records', () => {
  it('the medium carries the server and a token of its own; the server keeps only its hash', () => {
    expect(m.server).toBe(s.url);
    expect(m.token).toMatch(/^ferry-medium-/);
    const rows = s.data.db.prepare('SELECT * FROM media').all() as Record<string, string>[];
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(m.token);
  });

  it('writes the events and result into the installed system, and a first-boot unit that reports them', () => {
    const rec = JSON.parse(fs.readFileSync(path.join(dst, RECORD_FILE), 'utf8')) as InstallRecord;
    expect(rec).toMatchObject({ format: 'ferry-install-record/1', medium: 'FERRY-REC', node: 'offline1', status: 'success', inputs: { hostname: 'offline1' } });
    expect(rec.image.digest).toBe(m.image.digest);
    const starts = rec.events.filter((e) => e.state === 'start').map((e) => e.phase);
    expect(starts).toEqual(expect.arrayContaining(['config', 'disks', 'layers', 'customize', 'finish']));
    expect(fs.statSync(path.join(dst, REPORT_HEADER_FILE)).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(dst, RECORD_FILE)).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(path.join(dst, REPORT_UNIT), 'utf8')).toContain(`ExecStart=/${REPORT_SCRIPT}`);
    expect(fs.readlinkSync(path.join(dst, REPORT_UNIT_LINK))).toBe('../ferry-report-install.service');
    // Nothing reached the server during the install.
    expect(listDeployments(s.data)).toHaveLength(0);
  });

  it('the first-boot script posts the record; it becomes a deployment record, and the unit, script and token are removed', async () => {
    const recText = fs.readFileSync(path.join(dst, RECORD_FILE), 'utf8');
    const r = await run(['bash', path.join(dst, REPORT_SCRIPT)], { env: { FERRY_ROOT: dst }, timeoutMs: 60_000 });
    expect(r.stdout).toContain('the install record was posted');
    for (const f of [REPORT_SCRIPT, REPORT_UNIT, REPORT_HEADER_FILE]) expect(fs.existsSync(path.join(dst, f)), f).toBe(false);
    expect(fs.lstatSync(path.join(dst, REPORT_UNIT_LINK), { throwIfNoEntry: false })).toBeUndefined();
    expect(fs.readFileSync(path.join(dst, RECORD_FILE), 'utf8')).toBe(recText);
    const list = listDeployments(s.data);
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ node: 'offline1', image: 'mini@1', status: 'success', createdBy: 'medium:FERRY-REC' });
    const phases = new Set(deploymentEvents(s.data, list[0].id).map((e) => e.phase));
    for (const p of ['config', 'disks', 'layers', 'customize']) expect(phases).toContain(p);
    const h = await run(['node', FERRY, 'history', '--data', s.dataDir], { timeoutMs: 60_000 });
    expect(h.stdout).toMatch(/offline1\s+mini@1\s+medium\s+success/);
    // offline1 is no node of the inventory, and still has its history.
    expect((await run(['node', FERRY, 'history', 'offline1', '--data', s.dataDir], { timeoutMs: 60_000 })).stdout).toMatch(/offline1\s+mini@1\s+medium\s+success/);
    // Posted again (a lost answer): stored once.
    const again = await call(s.url, 'POST', '/api/v1/media/record', { token: m.token, body: JSON.parse(recText) });
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ duplicate: true, deployment: list[0].id });
    expect(listDeployments(s.data)).toHaveLength(1);
  });

  it('the medium token posts records only; other tokens and oversized records are refused', async () => {
    const rec = JSON.parse(fs.readFileSync(path.join(dst, RECORD_FILE), 'utf8')) as InstallRecord;
    const fresh = { ...rec, id: '00000000-0000-4000-8000-000000000000' };
    expect((await call(s.url, 'POST', '/api/v1/media/record', { body: fresh })).status).toBe(401);
    const wrong = await call(s.url, 'POST', '/api/v1/media/record', { token: 'ferry-medium-' + 'x'.repeat(43), body: fresh });
    expect(wrong.status).toBe(401);
    expect((await call(s.url, 'POST', '/api/v1/media/record', { token: s.srv.adminToken, body: fresh })).status).toBe(403);
    // The medium's token is no deploy or admin token.
    expect((await call(s.url, 'GET', '/api/v1/install/config', { token: m.token })).status).toBe(401);
    expect((await call(s.url, 'GET', '/api/v1/nodes', { token: m.token })).status).toBe(401);
    const big = { ...fresh, events: [{ phase: 'finish', state: 'info', message: 'x'.repeat(16000) }], inputs: Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`k${i}`, 'y'.repeat(16000)])) };
    expect((await call(s.url, 'POST', '/api/v1/media/record', { token: m.token, body: big })).status).toBe(413);
    expect(listDeployments(s.data)).toHaveLength(1);
  });

  it('without curl or wget, the script posts over bash\'s /dev/tcp (an http:// server)', async () => {
    const dst2 = path.join(s.tmp, 'dst2');
    fs.mkdirSync(dst2);
    const w = writeOfflineRecord(new TargetRoot(dst2), m, [{ phase: 'finish', state: 'start', ts: new Date().toISOString() }], new Date().toISOString());
    expect(w.report).toBe(true);
    const r = await run(['bash', path.join(dst2, REPORT_SCRIPT)], { env: { FERRY_ROOT: dst2, FERRY_REPORT_CLIENT: 'bash' }, timeoutMs: 60_000 });
    expect(r.stdout).toContain('the install record was posted');
    expect(fs.existsSync(path.join(dst2, REPORT_HEADER_FILE))).toBe(false);
    expect(listDeployments(s.data)).toHaveLength(2);
    // A refusal is a failure the unit retries, and the token stays for the retry.
    const dst3 = path.join(s.tmp, 'dst3');
    fs.mkdirSync(dst3);
    writeOfflineRecord(new TargetRoot(dst3), { ...m, token: 'ferry-medium-' + 'z'.repeat(43) }, [], new Date().toISOString());
    const bad = await run(['bash', path.join(dst3, REPORT_SCRIPT)], { env: { FERRY_ROOT: dst3, FERRY_REPORT_CLIENT: 'bash' }, timeoutMs: 60_000, okCodes: [1] });
    expect(bad.stderr).toContain('401');
    expect(fs.existsSync(path.join(dst3, REPORT_HEADER_FILE))).toBe(true);
    expect(listDeployments(s.data)).toHaveLength(2);
  });
});
