/**
 * A Ferry installation for the end-to-end vm tests: a server on the host's loopback (the
 * guests reach it as 10.0.2.2 through QEMU's user network), a TFTP directory whose boot.ipxe
 * chains to it, the boot environment from build/boot, the sample image imported, and helpers
 * to register nodes, arm them, and read the server's records.
 *
 * With `segment: { taps: N }` the server also sits on a layer-2 segment of its own: the netns
 * harness's bridge (test/harness/netns.ts, `server: 'host'`: the host's end of a veth into the
 * switch namespace, 10.X.Y.1) with N tap devices for guests. On that segment the server's own
 * TFTP (`tftp` of startServer, port 69 on 10.X.Y.1), dnsmasq as the full DHCP server (its config
 * from `ferry pxe dnsmasq-config --dhcp-range`) and udp-sender (multicast sessions on that
 * interface) answer the guests, as on a rack's switch. The server then listens on 10.X.Y.1 and
 * names it in its public URL; guests on QEMU's user network reach that address through the host
 * as well, so the other tests of a file are unchanged.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FerryError } from '../../common/errors.js';
import { run } from '../../common/run.js';
import { waitFor } from '../../common/wait.js';
import { spawnTool, type Spawned } from '../../common/run.js';
import { renderIpxeChain } from '../../server/boot/ipxe.js';
import { createNetwork, type Network } from '../harness/netns.js';
import { DataDir } from '../../server/context.js';
import { deploymentInfo, getDeploymentRow, listDeployments, type DeploymentInfo } from '../../server/db/deployments.js';
import { deploymentEvents } from '../../server/db/deployment-events.js';
import { startServer, type RunningServer } from '../../server/index.js';
import type { Guest } from './harness.js';
import type { DiscoverOptions } from '../../server/boot/decide.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const FERRY = join(REPO, 'bin', 'ferry');
/** The boot environment (kernel and initrd) nodes load; FERRY_BOOT_DIR tries another build. */
export const BOOT_DIR = process.env.FERRY_BOOT_DIR || join(REPO, 'build', 'boot');
export const LAYOUTS = join(REPO, 'test', 'vm', 'layouts');
/** The sample image's root password (scripts/make-sample-image). */
export const ROOT_PASSWORD = 'ferry';

/** udp-sender's --retries-until-drop on the vm segment (server/multicast/sessions.ts DEFAULT_DROP_RETRIES is 8). */
const VM_DROP_RETRIES = 200;
/** The multicast rate for guests under TCG: what their emulated NIC and CPU take (600m floods them). */
export const VM_MULTICAST_BITRATE = '30m';

/** A free TCP port on loopback: the server's public URL must name it before it starts. */
async function freePort(): Promise<number> {
  return new Promise((resolveP, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolveP(port));
    });
  });
}

/** Build (or reuse from the cache) the sample image; returns the tarball's path. */
export async function sampleImageTarball(): Promise<string> {
  const r = await run([join(REPO, 'scripts', 'make-sample-image')], { timeoutMs: 30 * 60_000 });
  const path = r.stdout.trim().split('\n').pop()!;
  if (!existsSync(path)) throw new FerryError('FERRY_E_SOURCE_MISSING', `scripts/make-sample-image printed ${path}, which does not exist`);
  return path;
}

export class FerryEnv {
  server!: RunningServer;
  dataDir!: string;
  tftpDir!: string;
  /** The layer-2 segment, when started with `segment`. */
  net?: Network;
  private dnsmasq?: Spawned;
  private db?: DataDir;

  static async start(opts: { segment?: { taps: number }; hostInstall?: boolean; discover?: DiscoverOptions } = {}): Promise<FerryEnv> {
    for (const f of ['vmlinuz', 'initrd.img']) {
      if (!existsSync(join(BOOT_DIR, f))) {
        throw new FerryError('FERRY_E_BOOT_FILE_MISSING', `the boot environment ${join(BOOT_DIR, f)} is missing`, { hint: 'build it with `make initrd` (make test-vm does)' });
      }
    }
    const e = new FerryEnv();
    e.dataDir = await mkdtemp(join(tmpdir(), 'ferry-e2e-data-'));
    e.tftpDir = join(e.dataDir, 'tftp');
    mkdirSync(e.tftpDir);
    const port = await freePort();
    // no_timer_check: under TCG on a busy host the kernel's IO-APIC timer check fails and it panics.
    const common = { dataDir: e.dataDir, bootDir: BOOT_DIR, kernelArgs: ['no_timer_check'], discover: opts.discover };
    try {
      if (opts.segment) {
        // A guest's link is not shaped; the server's gets a rate no emulated NIC reaches.
        const net = (e.net = await createNetwork({ nodes: 0, taps: opts.segment.taps, server: 'host', rate: '1gbit' }));
        const ip = net.server.ip;
        e.server = await startServer({
          ...common,
          listen: `${ip}:${port}`,
          publicUrl: `http://${ip}:${port}`,
          tftp: { listen: `${ip}:69`, root: e.tftpDir },
          // udp-sender drops a receiver that leaves 8 acknowledgement requests in a row unanswered;
          // an emulated guest on a loaded host answers that late without being stuck (measured: both
          // guests dropped after 156 KiB at 8), so the segment's sessions wait far longer.
          multicast: { interface: net.server.ifname, dropRetries: VM_DROP_RETRIES },
        });
        await e.startDhcp();
      } else {
        // hostInstall: the installer runs on this host (ferry install --disk), not in a guest
        // behind QEMU's user network, so the layers' URLs must name loopback.
        e.server = await startServer({ ...common, listen: `127.0.0.1:${port}`, publicUrl: `http://${opts.hostInstall ? '127.0.0.1' : '10.0.2.2'}:${port}` });
      }
      await writeFile(join(e.tftpDir, 'boot.ipxe'), renderIpxeChain(e.server.publicUrl));
    } catch (err) {
      await e.close(false).catch(() => {});
      throw err;
    }
    return e;
  }

  /** The address guests on the segment use for the server (its TFTP, HTTP and the multicast sender). */
  get segmentServerIp(): string {
    if (!this.net) throw new Error('FerryEnv was started without a segment');
    return this.net.server.ip;
  }

  /** An address on the segment outside the DHCP range (.100-.150): for a node's static address. */
  segmentAddress(last: number): string {
    return this.segmentServerIp.replace(/\.\d+$/, `.${last}`);
  }

  /** dnsmasq as the segment's DHCP server, configured by `ferry pxe dnsmasq-config --dhcp-range`. */
  private async startDhcp(): Promise<void> {
    const net = this.net!;
    const conf = join(this.dataDir, 'dnsmasq.conf');
    const text = await this.ferry('pxe', 'dnsmasq-config', '--interface', net.server.ifname, '--dhcp-range', `${this.segmentAddress(100)},${this.segmentAddress(150)}`);
    await writeFile(conf, text);
    // Its own lease file and no pid file: several runs (and the host's own dnsmasq) never share state.
    // With bind-interfaces and one interface, dnsmasq binds its DHCP socket to that device.
    const d = spawnTool(['setpriv', '--pdeathsig', 'KILL', '--', 'dnsmasq', '--keep-in-foreground', '--log-facility=-', `--conf-file=${conf}`, `--dhcp-leasefile=${join(this.dataDir, 'dnsmasq.leases')}`, '--pid-file'], { quiet: true, stdout: 'pipe' });
    this.dnsmasq = d;
    let out = '';
    d.child.stderr?.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-20_000)));
    d.child.stdout?.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-20_000)));
    d.done.catch(() => {});
    await waitFor(() => /DHCP, IP range/.test(out) || (d.child.exitCode !== null ? (() => { throw new FerryError('FERRY_E_TIMEOUT', `dnsmasq exited: ${out}`); })() : undefined), {
      what: 'dnsmasq to serve DHCP on the segment',
      timeoutMs: 20_000,
    });
    this.dhcpLog = () => out;
  }

  /** What dnsmasq logged (each DHCP exchange: `log-dhcp` is on). */
  dhcpLog: () => string = () => '';

  /** Run the ferry command against this data directory. */
  async ferry(...args: string[]): Promise<string> {
    const r = await run([FERRY, ...args, '--data', this.dataDir], { timeoutMs: 600_000 });
    return r.stdout;
  }

  async importSample(name = 'sample'): Promise<void> {
    const tar = await sampleImageTarball();
    await this.ferry('image', 'import', name, '--tar', tar, '--customizations', join(REPO, 'scripts', 'sample-image', 'customizations.json'));
  }

  private data(): DataDir {
    this.db ??= new DataDir(this.dataDir);
    return this.db;
  }

  deployments(node: string): DeploymentInfo[] {
    return listDeployments(this.data(), { node, limit: 10 });
  }

  deployment(id: number): DeploymentInfo {
    return deploymentInfo(getDeploymentRow(this.data(), id));
  }

  events(id: number) {
    return deploymentEvents(this.data(), id);
  }

  /** Wait until the deployment has ended (success or failed) in the server's records. */
  async waitForResult(id: number, guest: Guest, timeoutMs: number): Promise<DeploymentInfo> {
    try {
      return await waitFor(
        () => {
          const d = this.deployment(id);
          if (d.status === 'success' || d.status === 'failed') return d;
          if (!guest.running) throw new FerryError('FERRY_E_TIMEOUT', `guest ${guest.name} exited before deployment ${id} ended`);
          // A panicked guest never reports: fail now rather than at the deadline.
          if (/Kernel panic - not syncing/.test(guest.console)) throw new FerryError('FERRY_E_TIMEOUT', `the kernel of guest ${guest.name} panicked before deployment ${id} ended`);
          return undefined;
        },
        { what: `deployment ${id} to end (success or failed) on the server`, timeoutMs, intervalMs: 1000 },
      );
    } catch (e) {
      const d = this.deployment(id);
      throw new FerryError('FERRY_E_TIMEOUT', `${(e as Error).message}; the record says status=${d.status} stage=${d.stage}\n--- console tail of ${guest.name} (${guest.dir}) ---\n${guest.tail(2500)}`);
    }
  }

  /** Ends the server; its data directory stays when `keep` (a failed test) or FERRY_VM_KEEP=1. */
  async close(keep: boolean): Promise<void> {
    keep ||= process.env.FERRY_VM_KEEP === '1';
    this.db?.close();
    await this.server?.close();
    if (this.dnsmasq) {
      this.dnsmasq.child.kill('SIGTERM');
      await this.dnsmasq.done.catch(() => {});
    }
    await this.net?.teardown();
    if (keep) process.stderr.write(`[vm e2e] kept the server's data directory: ${this.dataDir}\n`);
    else if (this.dataDir) await rm(this.dataDir, { recursive: true, force: true });
  }
}

/** Log in as root on the installed system's serial console. */
export async function loginAsRoot(g: Guest, hostname: string): Promise<void> {
  g.send('root\n');
  await g.waitFor(/Password:\s*$/, { timeoutMs: 60_000, what: 'the password prompt', from: g.console.length });
  const from = g.console.length;
  g.send(`${ROOT_PASSWORD}\n`);
  await g.waitFor(new RegExp(`root@${hostname}:~# $`, 'm'), { timeoutMs: 120_000, what: `a root shell on ${hostname}`, from });
}
