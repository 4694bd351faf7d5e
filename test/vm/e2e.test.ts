/**
 * Ferry end to end, in QEMU: a node boots from the network (QEMU's iPXE → boot.ipxe over TFTP →
 * the server's /boot/ipxe), runs the installer of the boot environment, installs the sample
 * image, reports to the server, reboots, is told to boot its local disk, and comes up from its
 * own GRUB to a login prompt with the hostname Ferry gave it. Results are read both from the
 * server's records and from the guest's serial console.
 */
import { isAbsolute, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FerryEnv, LAYOUTS, loginAsRoot, REPO, VM_MULTICAST_BITRATE } from './ferry-env.js';
import { GuestSet, randomMac, sha256File, type DiskBus, type Firmware, type Guest } from './harness.js';

const MIN = 60_000;
const FIXTURE_06 = join(REPO, 'test/fixtures/systemimager-layouts/06-systeminstaller-generated-2018-no-bootloader.xml');
// Deadlines under TCG on a busy 2-core machine; a healthy run needs a fraction of each.
const T = { pxe: 5 * MIN, install: 20 * MIN, login: 8 * MIN };

describe('end to end', () => {
  const guests = new GuestSet();
  let env: FerryEnv;
  let failed = false;

  beforeAll(async () => {
    // Two taps on a bridge for the pair test's multicast install; the others use QEMU's user network.
    env = await FerryEnv.start({ segment: { taps: 2 } });
    await env.importSample('sample');
  });
  afterEach(async (ctx) => {
    const f = ctx.task.result?.state === 'fail';
    failed ||= f;
    await guests.closeAll(f);
  });
  afterAll(async () => {
    await env?.close(failed);
  });

  interface NodeSpec {
    name: string;
    hostname: string;
    firmware: Firmware;
    bus: DiskBus;
    /** A file in test/vm/layouts, or an absolute path. */
    layout: string;
    diskSize?: string;
    /** How many disks of that size (default 1). */
    disks?: number;
    inputs?: Record<string, string>;
    /** What the installer must decide about the image's initramfs on this machine. */
    initramfs: 'kept' | 'rebuild';
  }

  type GuestOpts = { onReboot?: 'reset' | 'exit'; format?: 'raw' | 'qcow2'; bootOrder?: 'qemu' | 'firmware'; tap?: number };

  /** Register the node with the server; returns its MAC. */
  async function register(n: NodeSpec): Promise<string> {
    const mac = randomMac();
    const sets = Object.entries({ hostname: n.hostname, ...n.inputs }).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
    await env.ferry('node', 'add', n.name, '--mac', mac, '--image', 'sample', '--layout', isAbsolute(n.layout) ? n.layout : join(LAYOUTS, n.layout), ...sets);
    return mac;
  }

  /** Arm the nodes in one `ferry deploy` (one batch: one multicast session); the deployment ids in order. */
  async function deploy(names: string[], ...opts: string[]): Promise<number[]> {
    const armed = JSON.parse(await env.ferry('deploy', ...names, ...opts, '--json')) as { deployments: { id: number; node: string }[] };
    return names.map((name, i) => (armed.deployments.find((d) => d.node === name) ?? armed.deployments[i]).id);
  }

  /** Power the node on: QEMU's user network (its TFTP), or tap `guestOpts.tap` on the segment. */
  function boot(n: NodeSpec, mac: string, guestOpts: GuestOpts = {}): Promise<Guest> {
    const tap = guestOpts.tap === undefined ? undefined : env.net!.taps[guestOpts.tap];
    return guests.start({
      name: n.name,
      firmware: n.firmware,
      memoryMiB: 1536,
      disks: Array.from({ length: n.disks ?? 1 }, () => ({ size: n.diskSize ?? '3G', bus: n.bus, format: guestOpts.format })),
      net: tap ? { tap: { ifname: tap.ifname, netns: tap.ns }, boot: true, mac } : { tftpDir: env.tftpDir, bootfile: 'boot.ipxe', boot: true, mac },
      onReboot: guestOpts.onReboot,
      bootOrder: guestOpts.bootOrder,
    });
  }

  /** Register the node, arm it, power it on; returns the guest and the deployment id. */
  async function armAndBoot(n: NodeSpec, guestOpts: GuestOpts = {}): Promise<{ g: Guest; id: number; mac: string }> {
    const mac = await register(n);
    const [id] = await deploy([n.name]);
    const g = await boot(n, mac, guestOpts);
    return { g, id, mac };
  }

  /** From power-on to the installed system's login prompt, checking each step. */
  /** Milestones on stderr: where the time of a vm test goes. */
  function milestone(g: Guest, what: string): void {
    process.stderr.write(`[vm e2e] ${g.name}: ${what} after ${((Date.now() - g.startedAt) / 1000).toFixed(0)} s\n`);
  }

  async function installToLogin(n: NodeSpec, g: Guest, id: number): Promise<void> {
    await g.waitFor(new RegExp(`Ferry: booting the installer for ${n.name}`), { timeoutMs: T.pxe, what: `iPXE to load the installer for ${n.name} from the server` });
    milestone(g, 'iPXE got the install script');
    const d = await env.waitForResult(id, g, T.install);
    milestone(g, `deployment ${d.status}`);
    expect(d.error, `deployment ${id} failed: ${JSON.stringify(d.error)}`).toBeUndefined();
    expect(d.status).toBe('success');
    const phases = new Set(env.events(id).map((e) => e.phase));
    for (const p of ['disks', 'layers', 'customize', 'bootloader']) expect(phases, `events of deployment ${id}`).toContain(p);
    // The sample image's initramfs (MODULES=most) already drives virtio, SATA and NVMe and ext4;
    // only a root on md/LVM, whose tools it lacks, needs a rebuild (the one slow step it skips).
    const ird = env.events(id).find((e) => e.phase === 'customize' && e.object === 'initramfs');
    expect(ird?.message, `the installer's initramfs decision for ${n.name}`).toMatch(new RegExp(`^initramfs ${n.initramfs}: `));
    // The reboot: the node network-boots again and the server now sends it to its disk.
    await g.waitFor(/booting from the local disk/, { timeoutMs: T.pxe, what: `the server to answer local boot to ${n.name}` });
    milestone(g, 'the server answered local boot');
    await g.waitFor(new RegExp(`^${n.hostname} login:`, 'm'), { timeoutMs: T.login, what: `the installed system's login prompt showing ${n.hostname}` });
    milestone(g, 'login prompt');
  }

  // BIOS with a virtio disk and the bios-msdos layout is what `make demo` installs (test/vm/demo.test.ts:
  // network boot, install, local boot, login prompt with the hostname): pair-a below is the
  // same machine with a static address, so no test installs it a third time.

  it('UEFI, GPT, NVMe disk: PXE boot, install, reboot into the installed system', async () => {
    const n: NodeSpec = { name: 'uefi1', hostname: 'ferry-uefi', firmware: 'uefi', bus: 'nvme', layout: 'uefi-gpt.xml', initramfs: 'kept' };
    // OVMF follows its own NVRAM BootOrder, as real firmware does (no QEMU bootindex): the blank
    // disk does not boot, the network does; after the install, what the installer left in the
    // firmware must send the node to the network first again, and from there to its disk.
    const { g, id } = await armAndBoot(n, { bootOrder: 'firmware' });
    await installToLogin(n, g, id);
    await loginAsRoot(g, n.hostname);
    expect(await g.sh('test -d /sys/firmware/efi && echo uefi || echo bios')).toMatch(/uefi/);
    expect((await g.sh('findmnt -n -o SOURCE,FSTYPE /')).trim()).toMatch(/^\/dev\/nvme0n1p2\s+ext4$/);
    expect((await g.sh('findmnt -n -o SOURCE,FSTYPE /boot/efi')).trim()).toMatch(/^\/dev\/nvme0n1p1\s+vfat$/);
    expect(await g.sh('lsblk -n -o PTTYPE /dev/nvme0n1 | head -1')).toMatch(/gpt/);
    // grub-install put its "debian" entry first in the firmware's BootOrder; the installer put
    // the network entry the node booted from back in front of it (the server decides each boot)
    // and "debian" right after it, which is where iPXE's local-boot exit went.
    const set = env.events(id).find((e) => e.phase === 'bootloader' && e.object === 'uefi boot order');
    const m = /^BootOrder (([0-9A-F]{4}),([0-9A-F]{4})\S*): network boot \2 \(UEFI PXEv4[^]*then \3 \(debian\)/.exec(set?.message ?? '');
    expect(m, `the installer's boot order event: ${set?.message}`).not.toBeNull();
    const efi = await g.sh('efibootmgr');
    expect(efi).toMatch(new RegExp(`^BootOrder: ${m![1]}$`, 'm'));
    expect(efi).toMatch(new RegExp(`^BootCurrent: ${m![3]}$`, 'm'));
  });

  it('BIOS, two disks, RAID1 and LVM (the shipped raid1-lvm layout): installs, and boots from the arrays', async () => {
    const n: NodeSpec = { name: 'raid1', hostname: 'ferry-raid', firmware: 'bios', bus: 'virtio', layout: join(REPO, 'layouts', 'raid1-lvm.xml'), disks: 2, initramfs: 'rebuild' };
    const { g, id } = await armAndBoot(n);
    await installToLogin(n, g, id);
    await loginAsRoot(g, n.hostname);
    // The installed system assembled both mirrors from its own mdadm.conf, each with both halves…
    const mdstat = await g.sh('cat /proc/mdstat');
    expect(mdstat).toMatch(/^md0 : active raid1 (vd[ab]2\[\d\] ?){2}/m);
    expect(mdstat).toMatch(/^md1 : active raid1 (vd[ab]3\[\d\] ?){2}/m);
    expect(mdstat.match(/\[UU\]/g)).toHaveLength(2);
    // …activated the volume group on md1, and mounted everything from fstab.
    expect((await g.sh('findmnt -n -o SOURCE,FSTYPE /')).trim()).toMatch(/^\/dev\/mapper\/sys-root\s+ext4$/);
    expect((await g.sh('findmnt -n -o SOURCE,FSTYPE /boot')).trim()).toMatch(/^\/dev\/md0\s+ext4$/);
    expect((await g.sh('findmnt -n -o SOURCE,FSTYPE /home')).trim()).toMatch(/^\/dev\/mapper\/sys-home\s+ext4$/);
    expect((await g.sh('lvm pvs --noheadings -o pv_name,vg_name')).trim()).toMatch(/^\/dev\/md1\s+sys$/);
    // GRUB's boot code is on both disks, so either can start the machine alone.
    for (const d of ['vda', 'vdb']) expect((await g.sh(`head -c 512 /dev/${d} | grep -a -c GRUB || true`)).trim()).toBe('1');
  });

  it('a layout that cannot fit: the error reaches the server, the disk is untouched, no reboot', async () => {
    const n: NodeSpec = { name: 'small1', hostname: 'ferry-small', firmware: 'bios', bus: 'virtio', layout: 'too-big.xml', diskSize: '2G', initramfs: 'kept' };
    // A raw disk so the checksum covers every byte the guest could write; a reboot ends QEMU.
    const { g, id } = await armAndBoot(n, { onReboot: 'exit', format: 'raw' });
    const before = await sha256File(g.disks[0].file);
    await g.waitFor(new RegExp(`Ferry: booting the installer for ${n.name}`), { timeoutMs: T.pxe, what: 'iPXE to load the installer' });
    const d = await env.waitForResult(id, g, T.install);
    expect(d.status).toBe('failed');
    // The planner's report (every problem at once) names the rule, the sizes and the disk.
    expect(d.error?.code).toBe('FERRY_E_PLAN_INVALID');
    expect(d.error?.message).toMatch(/FERRY_E_LAYOUT_TOO_BIG/);
    expect(d.error?.message).toMatch(/20\.5 GiB/);
    expect(d.error?.message).toMatch(/\/dev\/vda has 2146435072 bytes/);
    expect(d.error?.phase).toBe('disks');
    // The installer says so on the console too, and the machine stays up for the operator.
    await g.waitFor(/FERRY INSTALL FAILED in stage "disks"[\s\S]*FERRY_E_LAYOUT_TOO_BIG/, { timeoutMs: 2 * MIN, what: 'the installer to print the error on the console' });
    await g.waitFor(/FERRY-INSTALL-FAILED[\s\S]*starting a shell on the console/, { timeoutMs: 2 * MIN, what: 'the boot environment to stop with a shell after the failure, not reboot' });
    expect(g.running).toBe(true);
    expect(JSON.parse(await env.ferry('node', 'show', n.name, '--json'))).toMatchObject({ bootAction: 'install' });
    await g.kill();
    expect(await sha256File(g.disks[0].file)).toBe(before);
  });

  it('the same image on two nodes at once, each with its own hostname and static address', async () => {
    // One layer-2 segment (tap devices on the netns harness's bridge): the server's TFTP, dnsmasq
    // (full DHCP) and udp-sender answer both guests, which install the image by one multicast session.
    const gw = env.segmentServerIp;
    const staticNet = (address: string) => ({ 'network.mode': 'static', 'network.address': address, 'network.gateway': gw, 'network.dns': gw });
    const nodes: NodeSpec[] = [
      // SystemImager's own generated layout (fixture 06: msdos, /boot ext4 on 1, swap on logical 5,
      // / xfs on logical 6, no <bootloader>: the installer picks the one disk and says so).
      { name: 'pair-a', hostname: 'ferry-a', firmware: 'bios', bus: 'virtio', layout: FIXTURE_06, initramfs: 'kept', inputs: staticNet(`${env.segmentAddress(21)}/24`) },
      // The second machine has a SATA disk: one image and one layout serve both kinds of hardware.
      { name: 'pair-b', hostname: 'ferry-b', firmware: 'bios', bus: 'sata', layout: FIXTURE_06, initramfs: 'kept', inputs: staticNet(`${env.segmentAddress(22)}/24`) },
    ];
    const rootDevice: Record<string, string> = { 'pair-a': '/dev/vda6', 'pair-b': '/dev/sda6' };
    // Both are armed by one deploy (one batch: the session waits for both receivers, or 5 minutes
    // at most, since two emulated machines never boot in step), at a rate an emulated guest takes,
    // and powered on together.
    const macs = await Promise.all(nodes.map(register));
    const ids = await deploy(nodes.map((n) => n.name), '--transport', 'multicast', '--max-wait', '300', '--max-bitrate', VM_MULTICAST_BITRATE);
    const booted = await Promise.all(nodes.map(async (n, i) => ({ n, id: ids[i], g: await boot(n, macs[i], { tap: i }) })));
    await Promise.all(booted.map(({ n, g, id }) => installToLogin(n, g, id)));
    const recs = booted.map(({ id }) => env.deployment(id));
    expect(recs.map((r) => r.status)).toEqual(['success', 'success']);
    expect(recs[0].imageDigest).toBe(recs[1].imageDigest);
    // At once: each install started before the other one ended.
    expect(Date.parse(recs[0].startedAt!)).toBeLessThan(Date.parse(recs[1].endedAt!));
    expect(Date.parse(recs[1].startedAt!)).toBeLessThan(Date.parse(recs[0].endedAt!));
    for (const { n, id, mac } of booted.map((b, i) => ({ ...b, mac: macs[i] }))) {
      // By multicast, every layer: no fallback to HTTP; and the boot came from the segment's DHCP.
      const ev = env.events(id);
      expect(ev.filter((e) => e.state === 'warning' && (e.details as { fallback?: string } | undefined)?.fallback), `fallbacks of ${n.name}`).toEqual([]);
      // The stage's summary (after every layer): how the layers came, and how many by the fallback.
      expect(ev.find((e) => e.phase === 'layers' && e.state === 'info' && (e.details as { fallbacks?: number } | undefined)?.fallbacks !== undefined)?.details, `the layers stage of ${n.name}`).toMatchObject({ transport: 'multicast', fallbacks: 0 });
      expect(env.dhcpLog(), `dnsmasq's log for ${n.name}`).toMatch(new RegExp(`DHCPACK\\(${env.net!.server.ifname}\\) [\\d.]+ ${mac}`, 'i'));
    }
    const port = new URL(env.server.url).port;
    for (const { n, g } of booted) {
      await loginAsRoot(g, n.hostname);
      expect((await g.sh('hostname')).trim()).toBe(n.hostname);
      expect((await g.sh('findmnt -n -o SOURCE,FSTYPE /')).trim()).toMatch(new RegExp(`^${rootDevice[n.name]}\\s+xfs$`));
      expect((await g.sh('findmnt -n -o FSTYPE /boot')).trim()).toBe('ext4');
      // Booted by UUID, never by a device name (issue 17).
      const rootUuid = (await g.sh(`blkid -s UUID -o value ${rootDevice[n.name]}`)).trim();
      expect((await g.sh('cat /proc/cmdline')).trim()).toMatch(new RegExp(`(^|\\s)root=UUID=${rootUuid}(\\s|$)`));
      expect(await g.sh('test -d /sys/firmware/efi && echo uefi || echo bios')).toMatch(/bios/);
      // The server switched the node to local boot.
      expect(JSON.parse(await env.ferry('node', 'show', n.name, '--json'))).toMatchObject({ bootAction: 'local' });
      // The address is the static one Ferry wrote (systemd-networkd), not a DHCP lease.
      const addrs = await g.sh('ip -4 -o addr show scope global');
      expect(addrs).toContain(` ${n.inputs!['network.address']} `);
      expect(addrs).not.toMatch(/dynamic/);
      expect(await g.sh('ip -4 route show default')).toMatch(new RegExp(`^default via ${gw.replace(/\./g, '\\.')} `));
      // And it works: the installed system reaches the image server through it, on the segment.
      expect((await g.exec(`timeout 20 bash -c 'exec 3<>/dev/tcp/${gw}/${port}'`, { timeoutMs: 60_000 })).status).toBe(0);
    }
  }, 40 * MIN); // two emulated machines share the host's cores: allow for both deadlines in a row
});
