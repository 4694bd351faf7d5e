/**
 * A disk written on the host (issue 17): SystemImager's generated layout without <bootloader>
 * (fixture 06: msdos, /boot ext4 on 1, swap on logical 5, / xfs on logical 6) installed onto a
 * loop device with the image's own GRUB, then read back the way the installed system's boot
 * will: every UUID in its /etc/fstab is on a partition of the disk (`blkid -p`, straight from
 * the disk, never a cache), the table the kernel saw is the one on disk, and grub.cfg names the
 * root by UUID. The loop device held another install before (other partition sizes).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../common/run.js';
import type { ProgressEvent } from '../../common/progress.js';
import { runInstall } from '../../installer/install.js';
import { FerryServer } from './helpers/ferry-server.js';
import { blkid, kernelPartition, ROOT, Scratch } from './layout-helpers.js';
import { createNetwork, type Network, type NsProcess } from '../harness/netns.js';

const FIXTURE = path.join(ROOT, 'test/fixtures/systemimager-layouts/06-systeminstaller-generated-2018-no-bootloader.xml');
let work: string;
let server: FerryServer;
let scratch: Scratch;

beforeEach(async () => {
  scratch = new Scratch();
  work = scratch.dir;
  server = await FerryServer.start();
});
afterEach(async () => {
  await server.close();
  await scratch.cleanup();
});

describe('a disk written on the host', () => {
  it('fixture 06 on a loop device that held another layout: every fstab UUID is on the disk, grub.cfg boots the root by UUID', async () => {
    const src = path.join(work, 'src');
    await run([path.join(__dirname, 'helpers/grub-image.sh'), src]);
    fs.writeFileSync(path.join(src, 'boot/vmlinuz-6.1.0-ferry-test'), Buffer.alloc(4096, 1));
    await server.image('grubby', src, [{ kind: 'hostname' }]);
    const layout = fs.readFileSync(FIXTURE, 'utf8');
    const { file, dev: loop } = await scratch.loop(3 * 2 ** 30);
    // A program that makes a mount namespace while the target is mounted (`ip netns exec`, as
    // other tests and systemd services do) gets a copy of its mounts: the install's unmounts
    // must reach that copy, or the file systems stay alive on the disk after the install.
    const net: Network = await createNetwork({ nodes: 1 });
    let bystander: NsProcess | undefined;
    const install = async (node: string, mac: string, xml = layout) => {
      const armed = server.arm(node, 'grubby', { layout: xml, macs: [mac] });
      const events: ProgressEvent[] = [];
      const outcome = await runInstall({
        server: server.url, token: armed.token, disks: [loop!], yes: true, initramfs: false, console: () => {}, onNode: false,
        mountRoot: path.join(work, `target-${node}`),
        onEvent: (e) => {
          events.push(e);
          if (e.phase === 'layers' && e.state === 'start' && !bystander) bystander = net.nodes[0].spawn(['sleep', '600']);
        },
      });
      expect(outcome.result, JSON.stringify(events.filter((e) => e.state === 'error' || e.state === 'warning'), null, 2)).toEqual({ status: 'success' });
      return events;
    };
    // Twice onto the same loop device, first another layout of the same shape with other
    // partition sizes (layouts/bios-msdos.xml): the second install finds the first one's
    // signatures, partitions (in the kernel's view too) and UUIDs, all of which it must replace.
    let events: ProgressEvent[];
    try {
      await install('first', '52:54:00:aa:bb:01', fs.readFileSync(path.join(ROOT, 'layouts/bios-msdos.xml'), 'utf8'));
      expect(bystander, 'the bystander namespace was started while the target was mounted').toBeDefined();
      const [pid] = await net.nodes[0].pids();
      expect(pid).toBeGreaterThan(0);
      const copy = fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').filter((l) => l.includes(`${loop} `) || l.includes(`${loop}p`));
      expect(copy, 'the install\'s file systems are still mounted in the other namespace').toEqual([]);
      events = await install('second', '52:54:00:aa:bb:02');
    } finally {
      await net.teardown();
    }

    // The kernel's partitions are the ones on disk (a stale view would put mkfs somewhere else).
    const table = JSON.parse((await run(['sfdisk', '-J', loop])).stdout).partitiontable as { sectorsize?: number; partitions: { node: string; start: number; size: number }[] };
    for (const p of table.partitions) {
      const k = kernelPartition(p.node.replace(/^.*\//, '/dev/'));
      expect(k.start, p.node).toBe(p.start * 512);
      if (!/p2$/.test(p.node)) expect(k.size, p.node).toBe(p.size * 512);
    }
    const mnt = path.join(work, 'check');
    fs.mkdirSync(mnt);
    await run(['mount', '-o', 'ro', `${loop}p6`, mnt]);
    try {
      const fstab = fs.readFileSync(path.join(mnt, 'etc/fstab'), 'utf8');
      const onDisk = new Map<string, string>();
      for (const n of [1, 5, 6]) {
        const b = await blkid(`${loop}p${n}`);
        expect(b.UUID, `${loop}p${n}: ${JSON.stringify(b)}`).toBeDefined();
        onDisk.set(b.UUID, `${loop}p${n}`);
      }
      const named = [...fstab.matchAll(/^UUID=(\S+)\s+(\S+)\s+(\S+)/gm)].map((m) => ({ uuid: m[1], mp: m[2], type: m[3] }));
      expect(named.map((n) => n.mp).sort(), fstab).toEqual(['/', '/boot', 'none'].sort());
      for (const n of named) expect(onDisk.get(n.uuid), `fstab ${n.mp} UUID=${n.uuid}; on disk: ${JSON.stringify([...onDisk])}`).toBeDefined();
      expect(onDisk.get(named.find((n) => n.mp === '/')!.uuid)).toBe(`${loop}p6`);
      expect(onDisk.get(named.find((n) => n.mp === '/boot')!.uuid)).toBe(`${loop}p1`);
      expect(onDisk.get(named.find((n) => n.type === 'swap')!.uuid)).toBe(`${loop}p5`);
      expect(fstab).toBe(events.find((e) => e.phase === 'disks' && e.details?.fstab)!.details!.fstab);
      await run(['mount', '-o', 'ro', `${loop}p1`, path.join(mnt, 'boot')]);
      try {
        const cfg = fs.readFileSync(path.join(mnt, 'boot/grub/grub.cfg'), 'utf8');
        const rootUuid = named.find((n) => n.mp === '/')!.uuid;
        const kernels = cfg.split('\n').filter((l) => /^\s*linux\s/.test(l));
        expect(kernels.length, cfg).toBeGreaterThan(0);
        for (const l of kernels) expect(l).toMatch(new RegExp(`\\sroot=UUID=${rootUuid}\\s`));
      } finally {
        await run(['umount', path.join(mnt, 'boot')]);
      }
    } finally {
      await run(['umount', mnt]);
    }
  });
});
