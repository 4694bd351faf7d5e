/**
 * The layouts this host's kernel cannot apply (vfat ESP, md RAID, device-mapper LVM), applied
 * for real inside a QEMU guest booted with the boot environment (build/boot: Debian's kernel and
 * Ferry's initrd, `ferry.shell=1`): the layout is typed into a file over the serial shell, the
 * initrd's own `ferry-installer layout apply` runs in the guest, and lsblk, blkid, /proc/mdstat
 * and the LVM reports are checked against the plan the host computes for the same disks.
 * Each layout is also captured in the guest and planned again (same partitions), then torn down
 * so the next one starts from disks that held arrays and volumes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLayout } from '../../layout/parse.js';
import { planDisks } from '../../layout/plan.js';
import type { DiskPlan, DiskTarget } from '../../layout/types.js';
import { SHELL_READY } from '../../initrd/build.js';
import { GuestSet, type Guest } from './harness.js';

const ROOT = join(import.meta.dirname, '..', '..');
const VMLINUZ = join(ROOT, 'build', 'boot', 'vmlinuz');
const INITRD = join(ROOT, 'build', 'boot', 'initrd.img');
const installerCommand = (args: string) => `ferry-installer ${args}`;
const GiB = 1024 ** 3;
const DISKS: DiskTarget[] = [
  { path: '/dev/vda', size: 2 * GiB, sectorSize: 512 },
  { path: '/dev/vdb', size: 2 * GiB, sectorSize: 512 },
];

describe('layouts applied in a QEMU guest', () => {
  const guests = new GuestSet();
  let g: Guest;
  let work: string;
  let failed = false;

  beforeAll(async () => {
    if (!existsSync(VMLINUZ) || !existsSync(INITRD)) {
      throw new Error(`${VMLINUZ} and ${INITRD} are missing: run \`make initrd\` (make test-vm does it first)`);
    }
    work = await mkdtemp(join(tmpdir(), 'ferry-vm-layouts-'));
    // The real boot environment, in its shell mode: its drivers, its tools, its ferry-installer.
    g = await guests.start({
      name: 'layouts', memoryMiB: 2048, net: false, baseDir: work,
      kernel: { kernel: VMLINUZ, initrd: INITRD, append: 'console=ttyS0 quiet panic=-1 ferry.shell=1 ferry.net=0' },
      disks: DISKS.map((d, i) => ({ size: d.size, bus: 'virtio' as const, serial: `FERRYDISK${i}`, format: 'raw' as const })),
    });
    await g.waitFor(new RegExp(SHELL_READY), { timeoutMs: 240_000, what: 'the boot environment\'s shell (ferry.shell=1)' });
    await g.sh('for i in $(seq 100); do [ -e /sys/block/vda ] && [ -e /sys/block/vdb ] && break; sleep 0.1; done; [ -e /sys/block/vdb ]');
  }, 900_000);

  afterAll(async () => {
    await guests.closeAll(failed);
    // A failed run keeps the guest's console log and disks for a look.
    if (work && !failed) await rm(work, { recursive: true, force: true });
    else if (work) process.stderr.write(`layouts vm test: kept ${work}\n`);
  });

  /** Put a file into the guest through the serial shell (base64 lines, under the tty's line limit). */
  async function typeFile(path: string, text: string): Promise<void> {
    const b64 = Buffer.from(text).toString('base64');
    await g.sh(`: > ${path}.b64`);
    for (let i = 0; i < b64.length; i += 512) await g.sh(`echo ${b64.slice(i, i + 512)} >> ${path}.b64`);
    await g.sh(`base64 -d ${path}.b64 > ${path} && rm ${path}.b64`);
  }

  async function guestJson<T>(cmd: string): Promise<T> {
    const out = await g.sh(cmd, { timeoutMs: 120_000 });
    return JSON.parse(out.slice(out.indexOf('{'), out.lastIndexOf('}') + 1)) as T;
  }

  async function blkid(dev: string): Promise<Record<string, string>> {
    const out = (await g.exec(`blkid -p -o export ${dev}`)).output;
    return Object.fromEntries(out.split('\n').map((l) => l.trim()).filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  }

  const cases: { file: string; disks: number; expect: string[] }[] = [
    { file: 'layouts/uefi-gpt.xml', disks: 1, expect: ['vfat'] },
    { file: 'layouts/lvm.xml', disks: 1, expect: ['lvm'] },
    { file: 'layouts/raid1.xml', disks: 2, expect: ['raid'] },
    { file: 'layouts/raid1-lvm.xml', disks: 2, expect: ['raid', 'lvm'] },
  ];

  it('chooses disks by their serial numbers in the guest, and refuses a serial nobody has', async () => {
    try {
      // virtio-blk disks carry the serial QEMU gives them (FERRYDISK0, FERRYDISK1); without udev
      // discovery reads it from sysfs.
      const hinted = (serial: string) => `<config>
  <disk dev="/dev/sda" label_type="gpt" serial="${serial}"><part num="1" size="*"/></disk>
  <fsinfo real_dev="/dev/sda1" mp="/" fs="ext4"/>
</config>
`;
      await typeFile('/tmp/hinted.xml', hinted('FERRYDISK1'));
      // Without --disk the installer looks at every disk of the machine.
      const out = await g.exec(`${installerCommand('layout plan /tmp/hinted.xml --json')} 2>/tmp/plan.err; s=$?; cat /tmp/plan.err; [ $s = 0 ]`);
      expect(out.status, out.output).toBe(0);
      const plan = JSON.parse(out.output.slice(out.output.indexOf('{'), out.output.lastIndexOf('}') + 1)) as DiskPlan;
      expect(plan.deviceMap).toEqual({ '/dev/sda': '/dev/vdb', '/dev/sda1': '/dev/vdb1' });
      expect(plan.disks[0]).toMatchObject({ path: '/dev/vdb', size: 2 * GiB, sectorSize: 512 });
      await typeFile('/tmp/nomatch.xml', hinted('NOSUCHDISK'));
      const r = await g.exec(`${installerCommand('layout plan /tmp/nomatch.xml')} 2>&1`);
      expect(r.status).toBe(1);
      expect(r.output).toContain('FERRY_E_DISK_NO_MATCH');
      expect(r.output).toContain('serial FERRYDISK0');
    } catch (e) {
      failed = true;
      throw e;
    }
  });

  it.each(cases)('$file: apply, check against the plan, write, capture, tear down', async (c) => {
    try {
      const xml = await readFile(join(ROOT, c.file), 'utf8');
      const layout = parseLayout(xml, { file: c.file });
      const disks = DISKS.slice(0, c.disks);
      const plan = planDisks(layout, disks);
      const name = c.file.replace(/^layouts\/|\.xml$/g, '');
      const gfile = `/tmp/${name}.xml`;
      const root = `/mnt/${name}`;
      await typeFile(gfile, xml);
      const diskArgs = disks.map((d) => `--disk ${d.path}`).join(' ');

      // The guest plans the same thing the host does, then applies it.
      const guestPlan = await guestJson<DiskPlan>(`${installerCommand(`layout plan ${gfile} ${diskArgs} --json`)} 2>/tmp/plan.err`);
      expect(guestPlan.commands).toEqual(plan.commands);
      expect(guestPlan.fstab).toBe(plan.fstab.replace(c.file, gfile));
      const apply = await g.exec(`${installerCommand(`layout apply ${gfile} ${diskArgs} --root ${root} --yes`)} 2>/tmp/apply.err; s=$?; tail -n 30 /tmp/apply.err; [ $s = 0 ]`, { timeoutMs: 600_000 });
      expect(apply.status, apply.output).toBe(0);

      // Partitions as the guest kernel sees them.
      const lsblk = await guestJson<{ blockdevices: { path: string; size: number; children?: { path: string; size: number; type: string }[] }[] }>(`lsblk -J -b -o NAME,PATH,SIZE,TYPE ${diskArgs.replace(/--disk /g, '')}`);
      for (const d of plan.disks) {
        const top = lsblk.blockdevices.find((b) => b.path === d.path)!;
        const sizes = new Map((top.children ?? []).filter((x) => x.type === 'part').map((x) => [x.path, x.size]));
        for (const p of d.partitions.filter((x) => x.type !== 'extended')) expect(sizes.get(p.device), p.device).toBe(p.size);
      }
      // RAID arrays: active, with the planned members and size.
      if (c.expect.includes('raid')) {
        const mdstat = await g.sh('cat /proc/mdstat');
        for (const r of plan.raids) {
          const line = mdstat.split('\n').find((l) => l.startsWith(r.device.replace('/dev/', '') + ' '));
          expect(line, mdstat).toMatch(new RegExp(`active ${r.level}`));
          for (const m of r.members) expect(line).toContain(m.replace('/dev/', ''));
          expect(Number((await g.sh(`blockdev --getsize64 ${r.device}`)).trim())).toBe(r.size);
          expect((await blkid(r.members[0])).TYPE).toBe('linux_raid_member');
        }
      }
      // Volume groups and logical volumes with the planned extents.
      if (c.expect.includes('lvm')) {
        const rep = await guestJson<{ report: { lv: { lv_name: string; vg_name: string; lv_size: string }[] }[] }>('DM_DISABLE_UDEV=1 lvs --reportformat json --units b --nosuffix -o lv_name,vg_name,lv_size 2>/dev/null');
        const got = rep.report[0].lv.map((l) => [l.vg_name, l.lv_name, Number(l.lv_size)]).sort();
        const want = plan.volumeGroups.flatMap((v) => v.lvs.map((l) => [v.name, l.name, l.size])).sort();
        expect(got).toEqual(want);
      }
      // File systems: type, UUID and label as planned; mounted; written and read back.
      const mounts = await g.sh('cat /proc/mounts');
      for (const f of plan.filesystems.filter((x) => x.format)) {
        const b = await blkid(f.device);
        expect(b.TYPE, f.device).toBe(f.fstabType);
        expect(b.UUID, f.device).toBe(f.uuid);
        if (f.label) expect(b.LABEL, f.device).toBe(f.fs === 'fat32' || f.fs === 'vfat' ? f.label.toUpperCase() : f.label);
      }
      for (const m of plan.mounts) {
        const where = m.mountpoint === '/' ? root : `${root}${m.mountpoint}`;
        expect(mounts, `${m.device} on ${where}`).toMatch(new RegExp(`^${m.device} ${where} ${m.fstype} `, 'm'));
        await g.sh(`echo ferry-${name} > ${where}/ferry-test && sync && cat ${where}/ferry-test | grep -q ferry-${name}`);
      }
      if (c.expect.includes('vfat')) expect(plan.bootloader.esp).toEqual({ device: '/dev/vda1', mountpoint: '/boot/efi' });

      // Capture in the guest; planned again, the same partitions, arrays and volumes.
      const captured = await g.sh(`${installerCommand(`layout capture ${diskArgs} --root ${root}`)} 2>/tmp/capture.err`, { timeoutMs: 120_000 });
      const again = planDisks(parseLayout(captured.slice(captured.indexOf('<!--'))), disks);
      const shape = (p: DiskPlan) => ({
        parts: p.disks.map((d) => d.partitions.map((x) => [x.device, x.type, x.start, x.size])),
        raids: p.raids.map((r) => [r.device, r.level, r.members, r.size]).sort(),
        lvs: p.volumeGroups.map((v) => [v.name, v.lvs.map((l) => [l.name, l.extents])]),
        fs: p.filesystems.filter((f) => f.format).map((f) => [f.device, f.fstabType, f.uuid, f.mountpoint]).sort(),
      });
      expect(shape(again)).toEqual(shape(plan));

      if (c.expect.includes('raid') && c.expect.includes('lvm')) {
        // A disk still holding active arrays and volumes (unmounted): apply --yes releases them.
        await g.sh(`for m in $(grep " ${root}" /proc/mounts | cut -d" " -f2 | sort -r); do umount $m; done`);
        expect(await g.sh('cat /proc/mdstat')).toMatch(/^md\d+ : active/m);
        const re = await g.exec(`${installerCommand(`layout apply ${gfile} ${diskArgs} --root ${root} --yes`)} 2>/tmp/apply.err; s=$?; tail -n 30 /tmp/apply.err; [ $s = 0 ]`, { timeoutMs: 600_000 });
        expect(re.status, re.output).toBe(0);
        expect(await g.sh('grep releasing /tmp/apply.err')).toMatch(/releasing .*\/dev\/md/);
        expect(await g.sh('cat /proc/mounts')).toContain(` ${root} `);
      }

      const td = await g.exec(`${installerCommand(`layout teardown ${gfile} ${diskArgs} --root ${root}`)} 2>&1`, { timeoutMs: 120_000 });
      expect(td.status, td.output).toBe(0);
      expect(await g.sh('cat /proc/mounts')).not.toContain(root);
      if (c.expect.includes('raid')) expect(await g.sh('cat /proc/mdstat')).not.toMatch(/^md\d+ : active/m);
    } catch (e) {
      failed = true;
      // Leave the disks free for the next layout, whatever this one left behind.
      await g.exec('for m in $(grep " /mnt/" /proc/mounts | cut -d" " -f2 | sort -r); do umount $m; done; DM_DISABLE_UDEV=1 vgchange -an >/dev/null 2>&1; mdadm --stop --scan', { timeoutMs: 120_000 }).catch(() => undefined);
      throw e;
    }
  });
});
