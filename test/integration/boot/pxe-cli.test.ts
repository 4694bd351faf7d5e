/** `ferry pxe …` as an operator runs it (the bundled CLI). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from '../../../common/run.js';
import { renderIpxeChain, renderPxelinuxInstall, renderPxelinuxLocal } from '../../../server/boot/ipxe.js';

const FERRY = join(import.meta.dirname, '..', '..', '..', 'bin', 'ferry');
const data = mkdtempSync(join(tmpdir(), 'ferry-pxe-cli-'));
const ferry = (...a: string[]) => run([FERRY, ...a, '--data', data], { timeoutMs: 120_000, okCodes: [0, 1, 2] });

describe('ferry pxe', () => {
  afterAll(() => rmSync(data, { recursive: true, force: true }));

  it('prints the iPXE chain script for --server, else for the running server recorded in the data directory', async () => {
    const a = await ferry('pxe', 'ipxe-chain', '--server', 'http://192.0.2.10:8080');
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(renderIpxeChain('http://192.0.2.10:8080'));
    const none = await ferry('pxe', 'ipxe-chain');
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/FERRY_E_USAGE: give --server URL/);
    writeFileSync(join(data, 'server.json'), JSON.stringify({ url: 'http://127.0.0.1:8080', publicUrl: 'http://198.51.100.7:8080' }));
    expect((await ferry('pxe', 'ipxe-chain')).stdout).toBe(renderIpxeChain('http://198.51.100.7:8080'));
  });

  it('prints pxelinux files for install and local boot', async () => {
    const i = await ferry('pxe', 'pxelinux', '--mac', '52-54-00-12-34-56', '--server', 'http://192.0.2.10:8080', '--token', 'T0K');
    expect(i.stdout).toBe(renderPxelinuxInstall({ serverUrl: 'http://192.0.2.10:8080', token: 'T0K', mac: '52:54:00:12:34:56' }));
    expect(i.stderr).toContain('pxelinux.cfg/01-52-54-00-12-34-56');
    const l = await ferry('pxe', 'pxelinux', '--mac', '52:54:00:12:34:56');
    expect(l.stdout).toBe(renderPxelinuxLocal({ mac: '52:54:00:12:34:56' }));
  });

  it('explains what is wrong', async () => {
    const noIf = await ferry('pxe', 'dnsmasq-config', '--server', 'http://x:1');
    expect(noIf.code).toBe(2);
    expect(noIf.stderr).toMatch(/give --interface IF/);
    const badIf = await ferry('pxe', 'dnsmasq-config', '--interface', 'nosuch0', '--server', 'http://x:1');
    expect(badIf.code).toBe(1);
    expect(badIf.stderr).toMatch(/FERRY_E_PXE_INTERFACE: the interface "nosuch0" does not exist/);
    const other = await ferry('pxe', 'dnsmasq-config', '--interface', 'nosuch0', '--subnet', '10.9.0.0/16', '--tftp-server', '10.9.0.1', '--server', 'http://10.9.0.1:8080');
    expect(other.code).toBe(0);
    expect(other.stdout).toMatch(/^dhcp-range=10\.9\.0\.0,proxy,255\.255\.0\.0$/m);
    const bad = await ferry('pxe', 'pxelinux', '--mac', 'nope');
    expect(bad.stderr).toMatch(/FERRY_E_BOOT_BAD_MAC/);
    expect((await ferry('pxe', 'frobnicate')).code).toBe(2);
  });
});
