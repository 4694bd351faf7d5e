/**
 * The ssh-authorize-ferry item on by default: `ferry image import` and `ferry image commit` add it
 * unless --no-authorize-ferry (capture shares import's path: server/ssh/capture.ts passes the
 * CLI's items on). A real install of an image whose /etc/passwd has no root succeeds with the
 * warning FERRY_W_AUTHORIZE_NO_USER instead of failing, and writes no authorized_keys.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../common/run.js';
import { runInstall } from '../../../installer/install.js';
import { FerryServer } from '../helpers/ferry-server.js';
import { busyboxImage } from '../helpers/images.js';

const FERRY = path.join(import.meta.dirname, '..', '..', '..', 'bin', 'ferry');

describe('ssh-authorize-ferry by default', () => {
  let work: string;
  let data: string;
  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-authz-'));
    data = path.join(work, 'data');
  });
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
  const ferry = (args: string[]) => run([FERRY, ...args], { timeoutMs: 120_000, quiet: true, env: { FERRY_LOG_LEVEL: 'warn', FERRY_DATA: data } });
  const items = async (ref: string) => (JSON.parse((await ferry(['image', 'show', ref, '--json'])).stdout) as { customizations: { kind: string }[] }).customizations.map((c) => c.kind);

  it('import and commit add it unless --no-authorize-ferry', async () => {
    const tree = path.join(work, 'tree');
    fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(tree, 'etc/motd'), 'one\n');
    const custom = path.join(work, 'items.json');
    fs.writeFileSync(custom, JSON.stringify([{ kind: 'hostname' }]));
    await ferry(['image', 'import', 'on', '--dir', tree, '--customizations', custom]);
    expect(await items('on')).toEqual(['hostname', 'ssh-authorize-ferry']);
    await ferry(['image', 'import', 'off', '--dir', tree, '--no-authorize-ferry']);
    expect(await items('off')).toEqual([]);
    fs.writeFileSync(path.join(tree, 'etc/motd'), 'two\n');
    await ferry(['image', 'commit', 'off', tree, '--no-authorize-ferry']);
    expect(await items('off@2')).toEqual([]);
    fs.writeFileSync(path.join(tree, 'etc/motd'), 'three\n');
    await ferry(['image', 'commit', 'off', tree]);
    expect(await items('off@3')).toEqual(['ssh-authorize-ferry']);
    // Already there: not twice.
    fs.writeFileSync(path.join(tree, 'etc/motd'), 'four\n');
    await ferry(['image', 'commit', 'on', tree]);
    expect(await items('on@2')).toEqual(['hostname', 'ssh-authorize-ferry']);
  }, 120_000);

  it('an image without root in /etc/passwd installs with a warning, not a failure', async () => {
    const server = await FerryServer.start();
    try {
      const src = path.join(work, 'noroot');
      busyboxImage(src);
      fs.writeFileSync(path.join(src, 'etc/passwd'), 'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n');
      await server.image('noroot', src, [{ kind: 'ssh-authorize-ferry' }]);
      const armed = server.arm('bare01', 'noroot', { macs: ['52:54:00:12:35:01'] });
      const dst = path.join(work, 'dst');
      fs.mkdirSync(dst);
      const outcome = await runInstall({ server: server.url, token: armed.token, root: dst, yes: true, console: () => {} });
      expect(outcome.result).toEqual({ status: 'success' });
      const warn = server.deployment(armed.id).events.find((e) => e.code === 'FERRY_W_AUTHORIZE_NO_USER');
      expect(warn).toMatchObject({ phase: 'customize', state: 'warning' });
      expect(warn!.message).toMatch(/no user "root" in \/etc\/passwd/);
      expect(fs.existsSync(path.join(dst, 'root/.ssh/authorized_keys'))).toBe(false);
    } finally {
      await server.close();
    }
  }, 180_000);
});
