/**
 * Every customization action, run by a real install from the real server into a small image
 * (busybox for the shell the script item needs), checked against golden files.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CustomizationItem } from '../../common/protocol.js';
import { runInstall } from '../../installer/install.js';
import { FerryServer } from './helpers/ferry-server.js';
import { busyboxImage } from './helpers/images.js';

let work: string;
let server: FerryServer;
beforeEach(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-cust-'));
  server = await FerryServer.start();
});
afterEach(async () => {
  await server.close();
  fs.rmSync(work, { recursive: true, force: true });
});

const ITEMS: CustomizationItem[] = [
  { kind: 'hostname' },
  { kind: 'network' },
  { kind: 'authorized-keys', user: 'admin', keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIImageKey image@build'] },
  { kind: 'file', path: '/etc/ferry/role', content: 'web\n', mode: 0o640, uid: 0, gid: 1000 },
  { kind: 'file', path: '/opt/blob.bin', content: Buffer.from([0, 1, 2, 254, 255]).toString('base64'), encoding: 'base64', mode: 0o600 },
  { kind: 'regexp', path: '/etc/motd', pattern: 'MASTER', replacement: '{{ node.name }} (rack {{ node.rack }})' },
  { kind: 'template', path: '/etc/node.conf', template: 'name={{ node.name }}\nmac={{ node.mac }}\nrole={{ role }}\n', mode: 0o600 },
  {
    kind: 'script',
    script: [
      'echo "node=$FERRY_NODE role=$FERRY_INPUT_ROLE uid=$(id -u)" > /root/script-out',
      'ls /proc/self/ >/dev/null && echo proc-ok >> /root/script-out',
      '[ -c /dev/null ] && echo dev-ok >> /root/script-out',
      '[ -d /sys/class ] && echo sys-ok >> /root/script-out',
      'cat /etc/node.conf >> /root/script-out',
    ].join('\n'),
  },
];

const CHECKED = [
  'etc/hostname', 'etc/hosts', 'etc/network/interfaces', 'etc/resolv.conf', 'home/admin/.ssh', 'home/admin/.ssh/authorized_keys',
  'etc/ferry/role', 'opt/blob.bin', 'etc/motd', 'etc/node.conf', 'root/script-out', 'boot/initramfs-rebuilt',
];

function snapshot(root: string): string {
  return CHECKED.map((p) => {
    const st = fs.lstatSync(path.join(root, p));
    const head = `== /${p} ${st.isDirectory() ? 'dir' : 'file'} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
    if (st.isDirectory()) return head + '\n';
    const b = fs.readFileSync(path.join(root, p));
    return `${head}\n${p.endsWith('.bin') ? b.toString('hex') + '\n' : b.toString('utf8')}`;
  }).join('');
}

describe('customization in a real install', () => {
  it('applies every action (golden files), with /dev, /proc, /sys bound for scripts and unbound after', async () => {
    const src = path.join(work, 'src');
    busyboxImage(src);
    await server.image('busy', src, ITEMS);
    // node.rack is one of the templates' values: it must be there when the node is armed (the
    // arm-time checks refuse a placeholder without a value).
    const armed = server.arm('web01', 'busy', {
      macs: ['52:54:00:12:34:56'],
      properties: { rack: 'r7' },
      inputs: {
        hostname: 'web01.example.org', role: 'frontend',
        'network.mode': 'static', 'network.address': '192.0.2.10/24', 'network.gateway': '192.0.2.1', 'network.dns': '192.0.2.53', 'network.interface': 'ens3',
        'ssh.authorized_keys': 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperator operator@desk',
      },
    });
    const dst = path.join(work, 'dst');
    fs.mkdirSync(dst);
    const outcome = await runInstall({ server: server.url, token: armed.token, root: dst, yes: true, console: () => {} });
    expect(outcome.result).toEqual({ status: 'success' });
    await expect(snapshot(dst)).toMatchFileSnapshot('golden/customize-installed.txt');
    expect(fs.readFileSync(path.join(dst, 'etc/machine-id'), 'utf8')).toMatch(/^(?!f{32})[0-9a-f]{32}\n$/);
    expect(fs.existsSync(path.join(dst, 'var/lib/dbus/machine-id'))).toBe(false);
    expect(fs.readdirSync(path.join(dst, 'etc/ssh'))).toEqual(['sshd_config']);
    expect(fs.readdirSync(path.join(dst, 'tmp'))).toEqual([]);
    const mounts = fs.readFileSync('/proc/mounts', 'utf8');
    expect(mounts.includes(dst)).toBe(false);
  });

  it('reports a failing script with its output and stops before the bootloader', async () => {
    const src = path.join(work, 'src');
    busyboxImage(src);
    await server.image('busy', src, [{ kind: 'script', script: 'echo about to fail >&2\nexit 7\n' }]);
    const armed = server.arm('n2', 'busy');
    const dst = path.join(work, 'dst');
    fs.mkdirSync(dst);
    const outcome = await runInstall({ server: server.url, token: armed.token, root: dst, yes: true, initramfs: false, console: () => {} });
    expect(outcome.result.status).toBe('failed');
    expect(outcome.result.error).toMatchObject({ code: 'FERRY_E_CUSTOMIZE_COMMAND', phase: 'customize', details: { exitCode: 7, stderrTail: 'about to fail\n' } });
    const rec = server.deployment(armed.id);
    const err = rec.events.find((e) => e.state === 'error')!;
    expect(err.details).toMatchObject({ argv: ['chroot', dst, '/bin/sh', '/tmp/ferry-customize-1'], exitCode: 7 });
    expect(rec.events.some((e) => e.phase === 'bootloader')).toBe(false);
    expect(fs.readFileSync('/proc/mounts', 'utf8').includes(dst)).toBe(false);
  });
});
