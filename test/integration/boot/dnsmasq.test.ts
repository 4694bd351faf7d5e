/**
 * Network boot on a private network made of namespaces: a switch (a bridge), the
 * site's DHCP server (dnsmasq handing out addresses), the Ferry host (dnsmasq started
 * with `ferry pxe dnsmasq-config`'s output, and `ferry serve --tftp`), and a client
 * that speaks DHCP like PXE firmware, UEFI firmware and iPXE. Everything lives in
 * namespaces this test creates and deletes.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, spawnTool, type Spawned } from '../../../common/run.js';
import { waitFor } from '../../../common/wait.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const FERRY = join(ROOT, 'bin', 'ferry');
const CLIENT = join(import.meta.dirname, 'pxe-client.mjs');
const id = randomBytes(3).toString('hex');
const NS = { sw: `fb-sw-${id}`, site: `fb-site-${id}`, ferry: `fb-host-${id}`, client: `fb-cli-${id}` };
const HOST_IP = '192.0.2.1';
const SITE_IP = '192.0.2.2';
const CLIENT_IP = '192.0.2.50';

interface Proc {
  p: Spawned;
  out: string;
}

function start(ns: string, argv: string[]): Proc {
  const p = spawnTool(['ip', 'netns', 'exec', ns, ...argv], { quiet: true });
  const proc: Proc = { p, out: '' };
  p.child.stdout!.on('data', (b: Buffer) => (proc.out += b.toString()));
  p.child.stderr!.on('data', (b: Buffer) => (proc.out += b.toString()));
  return proc;
}

async function stop(proc: Proc | undefined): Promise<void> {
  if (!proc || proc.p.child.exitCode !== null || proc.p.child.signalCode !== null) return;
  proc.p.child.kill('SIGTERM');
  await proc.p.done.catch(() => {});
}

describe('proxy DHCP with ferry pxe dnsmasq-config', () => {
  let dir: string;
  const procs: Proc[] = [];
  let config = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-pxe-net-'));
    for (const ns of Object.values(NS)) await run(['ip', 'netns', 'add', ns]);
    const sh = (ns: string, ...a: string[]) => run(['ip', '-n', ns, ...a]);
    await sh(NS.sw, 'link', 'add', 'br0', 'type', 'bridge');
    await sh(NS.sw, 'link', 'set', 'br0', 'up');
    const ports: [string, string, string][] = [
      [NS.site, 'site0', `${SITE_IP}/24`],
      [NS.ferry, 'ferry0', `${HOST_IP}/24`],
      [NS.client, 'cli0', `${CLIENT_IP}/24`],
    ];
    for (const [ns, ifname, addr] of ports) {
      const peer = `p-${ifname}`;
      // Both ends are created in the switch namespace, then one end moves to its host.
      await sh(NS.sw, 'link', 'add', ifname, 'type', 'veth', 'peer', 'name', peer);
      await sh(NS.sw, 'link', 'set', ifname, 'netns', ns);
      await sh(NS.sw, 'link', 'set', peer, 'master', 'br0');
      await sh(NS.sw, 'link', 'set', peer, 'up');
      await sh(ns, 'addr', 'add', addr, 'dev', ifname);
      await sh(ns, 'link', 'set', ifname, 'up');
      await sh(ns, 'link', 'set', 'lo', 'up');
    }
    // The client broadcasts to 255.255.255.255: it needs a route out of its interface.
    await sh(NS.client, 'route', 'add', 'default', 'dev', 'cli0');

    // The site's own DHCP server: it hands out addresses and knows nothing about booting.
    procs.push(
      start(NS.site, ['dnsmasq', '--keep-in-foreground', '--user=root', '--port=0', '--interface=site0', '--bind-interfaces', '--log-facility=-', '--log-dhcp',
        '--dhcp-range=192.0.2.100,192.0.2.150,255.255.255.0,1h', '--no-ping', `--dhcp-leasefile=${join(dir, 'site.leases')}`, `--pid-file=${join(dir, 'site.pid')}`]),
    );
    // The Ferry host: the configuration comes from `ferry pxe dnsmasq-config` run there, finding the interface's subnet itself.
    const r = await run(['ip', 'netns', 'exec', NS.ferry, FERRY, 'pxe', 'dnsmasq-config', '--interface', 'ferry0', '--server', `http://${HOST_IP}:8080`], { timeoutMs: 120_000 });
    config = r.stdout;
    writeFileSync(join(dir, 'ferry-dnsmasq.conf'), config);
    procs.push(
      start(NS.ferry, ['dnsmasq', '--keep-in-foreground', '--user=root', `--conf-file=${join(dir, 'ferry-dnsmasq.conf')}`, '--log-facility=-',
        `--dhcp-leasefile=${join(dir, 'ferry.leases')}`, `--pid-file=${join(dir, 'ferry.pid')}`]),
    );
    // Ferry's server with its TFTP server, in the same namespace; the TFTP directory holds Debian's iPXE.
    const tftpRoot = join(dir, 'tftp');
    mkdirSync(tftpRoot);
    for (const f of ['undionly.kpxe', 'ipxe.efi']) {
      const src = ['/usr/lib/ipxe', '/usr/lib/ipxe/efi'].map((d) => join(d, f)).find((p) => existsSync(p));
      if (!src) throw new Error(`${f} is missing: install the Debian package ipxe (make deps does)`);
      copyFileSync(src, join(tftpRoot, f));
    }
    procs.push(
      start(NS.ferry, [FERRY, 'serve', '--data', join(dir, 'data'), '--listen', `${HOST_IP}:8080`, '--public-url', `http://${HOST_IP}:8080`, '--tftp', `${HOST_IP}:69`, '--tftp-root', tftpRoot]),
    );
    await waitFor(() => procs[0].out.includes('DHCP, IP range'), { what: 'the site DHCP server to start', timeoutMs: 30_000 });
    await waitFor(() => procs[1].out.includes('DHCP, proxy on subnet 192.0.2.0'), { what: 'dnsmasq (proxy) to start', timeoutMs: 30_000 });
    await waitFor(() => procs[2].out.includes('ferry: TFTP at'), { what: 'ferry serve --tftp to start', timeoutMs: 120_000 });
  });

  afterAll(async () => {
    for (const p of procs) await stop(p);
    for (const ns of Object.values(NS)) await run(['ip', 'netns', 'del', ns], { okCodes: [0, 1] }).catch(() => {});
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const client = async (kind: 'bios' | 'efi64' | 'ipxe') => {
    const r = await run(['ip', 'netns', 'exec', NS.client, process.execPath, CLIENT, kind, CLIENT_IP], { timeoutMs: 60_000 });
    return JSON.parse(r.stdout) as { offers: any[]; bootServer?: any };
  };

  it('generates a proxy configuration for the interface\'s subnet', () => {
    expect(config).toMatch(/^interface=ferry0$/m);
    expect(config).toMatch(/^dhcp-range=192\.0\.2\.0,proxy,255\.255\.255\.0$/m);
    expect(config).toMatch(/^pxe-service=tag:!ipxe,x86PC,.*undionly\.kpxe,192\.0\.2\.1$/m);
  });

  it('BIOS PXE firmware: an address from the site, undionly.kpxe from the proxy', async () => {
    const r = await client('bios');
    const site = r.offers.find((o) => o.serverId === SITE_IP);
    expect(site?.yiaddr).toMatch(/^192\.0\.2\.(1[0-4]\d|150)$/);
    const proxy = r.offers.find((o) => o.serverId === HOST_IP && o.type === 2);
    expect(proxy).toMatchObject({ yiaddr: '0.0.0.0', vendorClass: 'PXEClient' });
    expect(proxy.menu[0].text).toMatch(/Ferry/);
    expect(r.bootServer).toMatchObject({ file: 'undionly.kpxe', siaddr: HOST_IP });
  });

  it('UEFI firmware: ipxe.efi', async () => {
    const r = await client('efi64');
    expect(r.bootServer).toMatchObject({ file: 'ipxe.efi', siaddr: HOST_IP });
  });

  it('iPXE: boot.ipxe, which Ferry\'s TFTP server renders to ask the server for this MAC', async () => {
    const r = await client('ipxe');
    expect(r.bootServer).toMatchObject({ file: 'boot.ipxe', siaddr: HOST_IP });
    // What the firmware does next: fetch the files from the TFTP server the answer named.
    const got = join(dir, 'got');
    mkdirSync(got, { recursive: true });
    for (const f of ['undionly.kpxe', 'boot.ipxe']) {
      await run(['ip', 'netns', 'exec', NS.client, 'tftp', '-m', 'binary', HOST_IP, '-c', 'get', f, join(got, f)], { timeoutMs: 60_000 });
    }
    expect(readFileSync(join(got, 'undionly.kpxe')).equals(readFileSync(join(dir, 'tftp', 'undionly.kpxe')))).toBe(true);
    const chain = readFileSync(join(got, 'boot.ipxe'), 'utf8');
    expect(chain).toContain(`chain --autofree http://${HOST_IP}:8080/boot/ipxe?mac=\${netX/mac}`);
    // And the server answers iPXE's request: an unknown machine boots locally and is recorded.
    const script = await run(['ip', 'netns', 'exec', NS.client, 'curl', '-sS', `http://${HOST_IP}:8080/boot/ipxe?mac=52:54:00:aa:bb:cc`], { timeoutMs: 30_000 });
    expect(script.stdout).toMatch(/^#!ipxe\n# Ferry: local boot 52:54:00:aa:bb:cc: unknown machine/);
    const ls = await run([FERRY, 'node', 'ls', '--discovered', '--data', join(dir, 'data'), '--json'], { timeoutMs: 60_000 });
    expect(ls.stdout).toContain('52:54:00:aa:bb:cc');
  });
});
