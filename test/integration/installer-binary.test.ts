/**
 * Ship what is tested: the single executable build/ferry-installer (made here by the same script
 * as `make installer`) installs from the real server, reading its settings from a kernel command
 * line; and `ferry install --node` (the bundled CLI) arms a deployment itself and installs.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../common/run.js';
import { FerryServer } from './helpers/ferry-server.js';
import { describeTree, makeKitchenSink } from './helpers/trees.js';
import { busyboxImage } from './helpers/images.js';

const ROOT = path.join(__dirname, '..', '..');
let work: string;
let server: FerryServer;

beforeAll(async () => {
  await run([path.join(ROOT, 'scripts/make-installer.sh')], { cwd: ROOT, timeoutMs: 300_000 });
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bin-'));
  server = await FerryServer.start();
  const src = path.join(work, 'src');
  busyboxImage(src);
  await server.image('busy', src, [{ kind: 'hostname' }, { kind: 'file', path: '/etc/issue', content: 'Ferry\n' }]);
}, 300_000);
afterAll(async () => {
  await server?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('the bundled installer', () => {
  it('prints its version as a single executable', async () => {
    const r = await run([path.join(ROOT, 'build/ferry-installer'), '--version']);
    expect(r.stdout).toMatch(/^ferry-installer \d+\.\d+\.\d+\n$/);
  });

  it('runs the layouts command as ferry-installer layout', async () => {
    const r = await run([path.join(ROOT, 'build/ferry-installer'), 'layout', 'validate', path.join(ROOT, 'layouts/bios-msdos.xml')]);
    expect(r.code).toBe(0);
    const bad = path.join(work, 'bad.xml');
    fs.writeFileSync(bad, '<config><disk dev="/dev/sda" label_type="nonsense"></disk></config>');
    const r2 = await run([path.join(ROOT, 'build/ferry-installer'), 'layout', 'validate', bad], { okCodes: [1, 2] });
    expect(r2.stdout + r2.stderr).toContain('FERRY_E_');
  });

  it('installs with ferry.server, ferry.token and BOOTIF from a kernel command line', async () => {
    const armed = server.arm('bin1', 'busy', { macs: ['52:54:00:aa:bb:01'] });
    const cmdline = path.join(work, 'cmdline');
    fs.writeFileSync(cmdline, `console=ttyS0 ferry.server=${server.url} ferry.token=${armed.token} BOOTIF=01-52-54-00-AA-BB-01 ferry.finish=reboot ferry.initramfs=0 quiet\n`);
    const dst = path.join(work, 'dst1');
    fs.mkdirSync(dst);
    // --root: a directory install never reboots the host, whatever ferry.finish says.
    const r = await run([path.join(ROOT, 'build/ferry-installer'), 'run', '--cmdline', cmdline, '--root', dst], { env: { NODE_OPTIONS: '' } });
    expect(r.stderr).toContain('install finished successfully');
    expect(fs.readFileSync(path.join(dst, 'etc/issue'), 'utf8')).toBe('Ferry\n');
    expect(fs.readFileSync(path.join(dst, 'etc/hostname'), 'utf8')).toBe('bin1\n');
    // ferry.initramfs=0: the image's update-initramfs did not run.
    expect(fs.existsSync(path.join(dst, 'boot/initramfs-rebuilt'))).toBe(false);
    const rec = server.deployment(armed.id);
    expect(rec.row.status).toBe('success');
    expect(rec.events.find((e) => e.phase === 'identify' && e.state === 'info')?.object).toBe('52:54:00:aa:bb:01');
    const src = await describeTree(path.join(work, 'src'));
    const got = await describeTree(dst);
    expect(got.entries['bin/busybox']).toEqual(src.entries['bin/busybox']);
  });

  it('keeps every attribute of every file kind through the bundled CLI', async () => {
    const sink = path.join(work, 'sink');
    fs.mkdirSync(sink);
    await makeKitchenSink(sink);
    await server.image('sink', sink);
    const armed = server.arm('bin3', 'sink', { macs: ['52:54:00:aa:bb:03'] });
    const dst = path.join(work, 'dst4');
    fs.mkdirSync(dst);
    await run(['node', path.join(ROOT, 'build/ferry.mjs'), 'install', '--server', server.url, '--token', armed.token, '--root', dst]);
    const a = await describeTree(sink);
    const b = await describeTree(dst);
    for (const t of [a, b]) {
      for (const k of ['etc/hostname', 'etc/hosts', 'etc/machine-id']) delete t.entries[k];
      t.entries.etc = { ...t.entries.etc, mtime: undefined };
    }
    expect(b).toEqual(a);
    expect(server.deployment(armed.id).row.status).toBe('success');
  });

  it('reports a corrupted blob with the digest error', async () => {
    const src = path.join(work, 'noise');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'data'), Buffer.alloc(3 << 20, 'n'));
    const img = await server.image('corrupt', src);
    server.corruptBlob(img.layers[0].digest);
    const armed = server.arm('bin4', 'corrupt', { macs: ['52:54:00:aa:bb:04'] });
    const dst = path.join(work, 'dst5');
    fs.mkdirSync(dst);
    const r = await run(['node', path.join(ROOT, 'build/ferry.mjs'), 'install', '--server', server.url, '--token', armed.token, '--root', dst], { okCodes: [1] });
    expect(r.stderr).toContain('FERRY_E_LAYER_DIGEST');
    expect(r.stderr).toContain(img.layers[0].digest);
    expect(server.deployment(armed.id).row.status).toBe('failed');
    expect(fs.readdirSync('/tmp').filter((f) => f.startsWith('ferry-layer-')).length).toBe(0);
  });

  it('fails with exit code 1 and the error on the console when the token is wrong', async () => {
    const dst = path.join(work, 'dst2');
    fs.mkdirSync(dst);
    const r = await run([path.join(ROOT, 'build/ferry-installer'), 'run', '--server', server.url, '--token', 'wrong', '--root', dst], { okCodes: [1] });
    expect(r.stderr).toContain('FERRY INSTALL FAILED in stage "config"');
    expect(r.stderr).toContain('FERRY_E_TOKEN_REJECTED');
  });

  it('ferry install --node arms a deployment with the admin token from --data, then installs', async () => {
    server.arm('bin2', 'busy', { macs: ['52:54:00:aa:bb:02'] });
    const dst = path.join(work, 'dst3');
    fs.mkdirSync(dst);
    const r = await run(['node', path.join(ROOT, 'build/ferry.mjs'), 'install', '--server', server.url, '--node', 'bin2', '--data', server.dataDir, '--root', dst, '--no-initramfs']);
    expect(r.stderr).toMatch(/armed deployment \d+ for node bin2/);
    expect(fs.readFileSync(path.join(dst, 'etc/hostname'), 'utf8')).toBe('bin2\n');
    const rec = server.data.db.prepare("SELECT id FROM deployments WHERE node_name = 'bin2' ORDER BY id DESC LIMIT 1").get() as { id: number };
    expect(server.deployment(rec.id).row.status).toBe('success');
  });

  it('runs regexp items in a worker from the single executable, and stops a catastrophic one with its file and pattern', async () => {
    // The worker's code is evaluated from a string (installer/customize/regexp.ts): no module
    // file outside the bundle. A working item proves the worker runs; a catastrophic one ends at
    // the limit with the coded error instead of stalling the installer.
    const src = path.join(work, 'rx');
    busyboxImage(src);
    fs.writeFileSync(path.join(src, 'etc/motd'), 'Welcome to MASTER\n');
    await server.image('rx-good', src, [{ kind: 'regexp', path: '/etc/motd', pattern: 'MASTER', replacement: '{{ node.name }}' }]);
    await server.image('rx-bad', src, [{ kind: 'file', path: '/etc/motd', content: 'a'.repeat(40) + 'b\n' }, { kind: 'regexp', path: '/etc/motd', pattern: '(a+)+$', replacement: 'x' }]);
    const good = server.arm('bin5', 'rx-good', { macs: ['52:54:00:aa:bb:05'] });
    const dst = path.join(work, 'dst6');
    fs.mkdirSync(dst);
    const r = await run([path.join(ROOT, 'build/ferry-installer'), 'run', '--server', server.url, '--token', good.token, '--root', dst, '--no-initramfs'], { env: { NODE_OPTIONS: '' } });
    expect(r.stderr).toContain('install finished successfully');
    expect(fs.readFileSync(path.join(dst, 'etc/motd'), 'utf8')).toBe('Welcome to bin5\n');
    const bad = server.arm('bin6', 'rx-bad', { macs: ['52:54:00:aa:bb:06'] });
    const dst2 = path.join(work, 'dst7');
    fs.mkdirSync(dst2);
    const t0 = Date.now();
    const r2 = await run([path.join(ROOT, 'build/ferry-installer'), 'run', '--server', server.url, '--token', bad.token, '--root', dst2, '--no-initramfs'], { env: { NODE_OPTIONS: '' }, okCodes: [1], timeoutMs: 120_000 });
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(r2.stderr).toContain('FERRY_E_CUSTOMIZE_INPUT');
    expect(r2.stderr).toContain('regexp replacement in /etc/motd: /(a+)+$/ ran longer than 5 s');
    const rec = server.deployment(bad.id);
    expect(rec.row.status).toBe('failed');
    expect(rec.events.find((e) => e.state === 'error')).toMatchObject({ phase: 'customize', code: 'FERRY_E_CUSTOMIZE_INPUT' });
  }, 120_000);

  it('ferry install refuses disks without --yes', async () => {
    const r = await run(['node', path.join(ROOT, 'build/ferry.mjs'), 'install', '--server', server.url, '--token', 't', '--disk', '/dev/loop99'], { okCodes: [1] });
    expect(r.stderr).toContain('FERRY_E_NOT_CONFIRMED');
  });
});
