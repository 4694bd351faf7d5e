/**
 * Discovery, enlistment and power in QEMU (issue 18): an unknown guest (a QMP socket, network
 * boot first, 1536 MiB, 2 CPUs, a disk with a serial, a DMI serial, a known MAC) boots discovery
 * from `ferry serve --discover`, reports inventory that matches what QEMU was given and powers
 * off; `ferry node enlist` makes it a node with image and layout, `ferry node set --power qemu
 * --power-address SOCKET` gives it its driver, and `ferry deploy NODE --power` installs it with
 * no other action from the harness, up to its login prompt.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../common/wait.js';
import { QmpClient } from '../../server/power/qemu.js';
import { FerryEnv, LAYOUTS } from './ferry-env.js';
import { GuestSet } from './harness.js';

const MIN = 60_000;
// Deadlines under TCG on a busy 2-core machine; a healthy run needs a fraction of each.
const T = { discovery: 8 * MIN, install: 20 * MIN, login: 8 * MIN };

describe('discovery, enlistment and deploy --power', () => {
  const guests = new GuestSet();
  let env: FerryEnv;
  let failed = false;
  let sockDir: string | undefined;

  beforeAll(async () => {
    env = await FerryEnv.start({ discover: { finish: 'poweroff' } });
    await env.importSample('sample');
  }, 30 * MIN);
  afterEach(async (ctx) => {
    const f = ctx.task.result?.state === 'fail';
    failed ||= f;
    await guests.closeAll(f);
  });
  afterAll(async () => {
    await env?.close(failed);
    if (sockDir) await rm(sockDir, { recursive: true, force: true });
  });

  it('an unknown guest reports what QEMU gave it, powers off, is enlisted and installs by deploy --power', async () => {
    const mac = '52:54:00:d1:5c:07';
    const diskSerial = 'FERRYDISC07';
    const sys = 'FERRYVM07';
    // -no-shutdown: the guest's poweroff leaves QEMU (and its QMP socket) up, reading as off.
    sockDir = await mkdtemp(join(tmpdir(), 'ferry-vm-qmp-'));
    const sock = join(sockDir, 'qmp.sock');
    const d = await guests.start({
      name: 'disc1',
      firmware: 'bios',
      memoryMiB: 1536,
      cpus: 2,
      disks: [{ size: '3G', bus: 'virtio', serial: diskSerial }],
      net: { tftpDir: env.tftpDir, bootfile: 'boot.ipxe', boot: true, mac },
      extraArgs: ['-smbios', `type=1,manufacturer=Ferry Lab,product=disc-guest,serial=${sys}`, '-no-shutdown', '-qmp', `unix:${sock},server=on,wait=off`],
    });
    const stamp = (what: string) => process.stderr.write(`[vm power] ${what} after ${((Date.now() - d.startedAt) / 1000).toFixed(0)} s\n`);
    const status = async () => {
      const q = await QmpClient.connect(sock, 10_000);
      try {
        return ((await q.execute('query-status')) as { status: string }).status;
      } finally {
        q.close();
      }
    };
    await d.waitFor(/Ferry: booting the inventory for 52:54:00:d1:5c:07/, { timeoutMs: T.discovery, what: 'iPXE to load the discovery boot' });
    stamp('discovery boot script');
    await d.waitFor(/discovery report stored for 52:54:00:d1:5c:07/, { timeoutMs: T.discovery, what: 'the inventory report' });
    stamp('inventory stored');
    await waitFor(async () => ((await status()) === 'shutdown' ? true : undefined), { what: 'the discovered guest to power off', timeoutMs: 2 * MIN, intervalMs: 1000 });
    stamp('powered off');

    const found = (JSON.parse(await env.ferry('node', 'ls', '--discovered', '--json')) as any[]).find((x) => x.mac === mac);
    const inv = found.inventory;
    expect(inv).toMatchObject({ vendor: 'Ferry Lab', product: 'disc-guest', serial: sys, cpus: 2, nics: [mac] });
    // The DMI memory devices sum to what -m gave.
    expect(inv.memoryBytes).toBe(1536 * 1024 ** 2);
    expect(inv.disks).toEqual([{ path: '/dev/vda', sizeBytes: 3 * 1024 ** 3, serial: diskSerial }]);

    // Enlisted by a pattern, given its power driver and hostname, deployed with --power: nothing else.
    const made = JSON.parse(await env.ferry('node', 'enlist', mac, '--name', 'lab-{serial}', '--image', 'sample', '--layout', join(LAYOUTS, 'bios-msdos.xml'), '--json')) as { name: string; properties: Record<string, string> }[];
    expect(made.map((n) => n.name)).toEqual(['lab-FERRYVM07']);
    expect(made[0].properties).toMatchObject({ 'hw.disk.0.serial': diskSerial, 'hw.nic.0.mac': mac, 'hw.cpu.threads': '2' });
    await env.ferry('node', 'set', 'lab-FERRYVM07', '--power', 'qemu', '--power-address', sock, '--set', 'hostname=ferry-lab');
    const armed = JSON.parse(await env.ferry('deploy', 'lab-FERRYVM07', '--power', '--json')) as { deployments: { id: number }[]; power: { ok: boolean }[] };
    expect(armed.power.every((p) => p.ok)).toBe(true);
    const id = armed.deployments[0].id;
    await d.waitFor(/Ferry: booting the installer for lab-FERRYVM07/, { timeoutMs: T.discovery, what: 'the powered-on guest to load the installer' });
    stamp('install boot script');
    const rec = await env.waitForResult(id, d, T.install);
    expect(rec.error, JSON.stringify(rec.error)).toBeUndefined();
    expect(rec.status).toBe('success');
    stamp('installed');
    await d.waitFor(/^ferry-lab login:/m, { timeoutMs: T.login, what: 'the installed system\'s login prompt' });
    stamp('login prompt');
  }, 45 * MIN);
});
