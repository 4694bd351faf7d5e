/**
 * `ferry serve --tftp`: the server's TFTP answers are decided like GET /boot/ipxe:
 * boot.ipxe for this server, pxelinux.cfg/01-MAC installing an armed node and booting
 * the disk otherwise (an unknown MAC is recorded as discovered), files of its directory.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../common/run.js';
import { listDiscovered } from '../../../server/db/inventory.js';
import { FerryServer } from '../helpers/ferry-server.js';
import { busyboxImage } from '../helpers/images.js';

describe('ferry serve --tftp', () => {
  let srv: FerryServer;
  let dir: string;
  let token: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-srv-tftp-'));
    mkdirSync(join(dir, 'tftp'));
    writeFileSync(join(dir, 'tftp', 'undionly.kpxe'), readFileSync('/usr/lib/ipxe/undionly.kpxe'));
    srv = await FerryServer.start();
    await srv.restart({ publicUrl: 'http://192.0.2.10:8080', tftp: { listen: '127.0.0.1:0', root: join(dir, 'tftp') } });
    busyboxImage(join(dir, 'tree'));
    await srv.image('tftp-test', join(dir, 'tree'));
    token = srv.arm('pxe-node', 'tftp-test', { macs: ['52:54:00:aa:bb:01'] }).token;
  });
  afterAll(async () => {
    await srv?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = async (name: string) => {
    const out = join(dir, 'got');
    rmSync(out, { force: true });
    const r = await run(['tftp', '-m', 'binary', '127.0.0.1', String(srv.srv.tftp!.port), '-c', 'get', name, out], { timeoutMs: 30_000, okCodes: [0, 1] });
    let data: Buffer | undefined;
    try {
      data = readFileSync(out);
    } catch {
      data = undefined;
    }
    return { text: data?.toString('utf8'), data, said: r.stdout + r.stderr };
  };

  it('installs an armed node with pxelinux', async () => {
    const { text } = await get('pxelinux.cfg/01-52-54-00-aa-bb-01');
    expect(text).toContain('KERNEL http://192.0.2.10:8080/boot/vmlinuz');
    expect(text).toContain(`ferry.server=http://192.0.2.10:8080 ferry.token=${token} BOOTIF=01-52-54-00-aa-bb-01`);
  });

  it('boots an unknown machine locally and records it', async () => {
    const { text } = await get('pxelinux.cfg/01-52-54-00-aa-bb-99');
    expect(text).toMatch(/LOCALBOOT 0/);
    expect(listDiscovered(srv.data).map((d) => d.mac)).toContain('52:54:00:aa:bb:99');
  });

  it('renders boot.ipxe for the public URL and serves its directory, nothing else', async () => {
    expect((await get('boot.ipxe')).text).toContain('chain --autofree http://192.0.2.10:8080/boot/ipxe?mac=${netX/mac}');
    expect((await get('undionly.kpxe')).data?.equals(readFileSync('/usr/lib/ipxe/undionly.kpxe'))).toBe(true);
    expect((await get('../data/admin.token')).said).toMatch(/access violation/i);
    expect((await get('pxelinux.cfg/01-zz')).said).toMatch(/not found/i);
  });
});
