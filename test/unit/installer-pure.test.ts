import { describe, expect, it } from 'vitest';
import { parseEfibootmgr, planBootloader, planUefiBootOrder } from '../../installer/bootloader.js';
import type { TargetView } from '../../installer/customize/plan.js';
import { macFromBootif, parseCmdline, pickMac } from '../../installer/identify.js';
import { backoffDelay, isRetriableNetworkError } from '../../installer/retry.js';
import { disksInUse, errorEvent } from '../../installer/install.js';
import { FerryError } from '../../common/errors.js';
import { TarParser } from '../../layers/tar.js';
import { parsePax } from '../../layers/tar-header.js';

const has = (...paths: string[]): TargetView => ({ readText: () => undefined, exists: (p) => paths.includes(p), list: () => [] });

describe('identify', () => {
  it('reads BOOTIF and the kernel command line', () => {
    expect(macFromBootif('01-52-54-00-AB-CD-EF')).toBe('52:54:00:ab:cd:ef');
    expect(macFromBootif('52:54:00:ab:cd:ef')).toBe('52:54:00:ab:cd:ef');
    expect(macFromBootif('nonsense')).toBeUndefined();
    expect(parseCmdline('console=ttyS0 ferry.server=http://10.0.2.2:8080 ferry.token=abc BOOTIF=01-52-54-00-12-34-56 quiet x="a b"\n')).toEqual({
      console: 'ttyS0', 'ferry.server': 'http://10.0.2.2:8080', 'ferry.token': 'abc', BOOTIF: '01-52-54-00-12-34-56', quiet: '', x: 'a b',
    });
  });
  it('prefers a physical interface that is up', () => {
    expect(pickMac([
      { name: 'br0', mac: '02:00:00:00:00:01', physical: false, up: true },
      { name: 'eno1', mac: '52:54:00:00:00:02', physical: true, up: false },
      { name: 'eno2', mac: '52:54:00:00:00:03', physical: true, up: true },
      { name: 'lo', mac: '00:00:00:00:00:00', physical: false, up: true },
    ])).toBe('52:54:00:00:00:03');
    expect(pickMac([])).toBeUndefined();
  });
});

describe('bootloader decision', () => {
  const grub = has('/usr/sbin/grub-install', '/usr/sbin/update-grub');
  it('installs BIOS GRUB on the layout targets, then its configuration', () => {
    const d = planBootloader({ override: 'auto', request: { mode: 'bios', targets: ['/dev/vda'] }, firmwareEfi: false, view: grub });
    expect(d.commands).toEqual([['/usr/sbin/grub-install', '--target=i386-pc', '--recheck', '/dev/vda'], ['/usr/sbin/update-grub']]);
  });
  it('installs UEFI GRUB with the removable fallback, without NVRAM on BIOS firmware', () => {
    const d = planBootloader({ override: 'uefi', request: { mode: undefined, targets: [], esp: { device: '/dev/vda1', mountpoint: '/boot/efi' } }, firmwareEfi: false, view: has('/usr/sbin/grub-install', '/usr/sbin/grub-mkconfig') });
    expect(d.commands).toEqual([
      ['/usr/sbin/grub-install', '--target=x86_64-efi', '--efi-directory=/boot/efi', '--bootloader-id=debian', '--recheck', '--no-nvram'],
      ['/usr/sbin/grub-install', '--target=x86_64-efi', '--efi-directory=/boot/efi', '--removable', '--no-nvram'],
      ['/usr/sbin/grub-mkconfig', '-o', '/boot/grub/grub.cfg'],
    ]);
  });
  it('detects the firmware when the layout says nothing', () => {
    expect(planBootloader({ override: 'auto', request: { mode: undefined, targets: [], esp: { device: '/dev/vda1', mountpoint: '/boot/efi' } }, firmwareEfi: true, view: grub }).mode).toBe('uefi');
    expect(planBootloader({ override: 'auto', request: { mode: undefined, targets: ['/dev/sda'] }, firmwareEfi: false, view: grub }).mode).toBe('bios');
  });
  it('honours none, warns when the image has no GRUB, fails when GRUB was asked for but is missing', () => {
    expect(planBootloader({ override: 'none', request: { mode: 'bios', targets: ['/dev/sda'] }, firmwareEfi: false, view: grub })).toMatchObject({ mode: 'none', commands: [] });
    expect(planBootloader({ override: 'auto', request: { mode: 'none', targets: [] }, firmwareEfi: false, view: grub }).mode).toBe('none');
    const w = planBootloader({ override: 'auto', request: { mode: undefined, targets: ['/dev/sda'] }, firmwareEfi: false, view: has() });
    expect(w.mode).toBe('none');
    expect(w.warnings[0]).toMatch(/no GRUB/);
    expect(() => planBootloader({ override: 'auto', request: { mode: 'bios', targets: ['/dev/sda'] }, firmwareEfi: false, view: has() })).toThrow(/has no grub-install/);
  });
});

describe('UEFI boot entries', () => {
  const grub = has('/usr/sbin/grub-install', '/usr/sbin/update-grub', '/usr/bin/efibootmgr');
  const esp = { mode: undefined, targets: [], esp: { device: '/dev/nvme0n1p1', mountpoint: '/boot/efi' } };
  it('writes the firmware entries and keeps the network first only on the machine being installed', () => {
    const node = planBootloader({ override: 'auto', request: esp, firmwareEfi: true, ownFirmware: true, view: grub });
    expect(node.commands[0]).toEqual(['/usr/sbin/grub-install', '--target=x86_64-efi', '--efi-directory=/boot/efi', '--bootloader-id=debian', '--recheck']);
    expect(node.uefiBootOrder).toEqual({ efibootmgr: '/usr/bin/efibootmgr', bootloaderId: 'debian' });
    // A UEFI host writing a USB stick or a disk image: the host's own NVRAM is not touched.
    const host = planBootloader({ override: 'auto', request: esp, firmwareEfi: true, ownFirmware: false, view: grub });
    expect(host.commands[0]).toContain('--no-nvram');
    expect(host.uefiBootOrder).toBeUndefined();
    const noTool = planBootloader({ override: 'auto', request: esp, firmwareEfi: true, ownFirmware: true, view: has('/usr/sbin/grub-install', '/usr/sbin/update-grub') });
    expect(noTool.uefiBootOrder).toBeUndefined();
    expect(noTool.warnings.join('\n')).toMatch(/no efibootmgr.*may not boot from the network again/);
  });

  // efibootmgr 17 (Debian 12) on OVMF after grub-install added "debian" and put it first.
  const afterGrub = [
    'BootCurrent: 0002',
    'Timeout: 0 seconds',
    'BootOrder: 0008,0001,0002,0003,0004,0005,0006,0000,0007',
    'Boot0000* UiApp\tFvVol(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)/FvFile(462caa21-7614-4503-836e-8ab6f4662331)',
    'Boot0001* UEFI QEMU NVMe Ctrl FERRY0 1\tPciRoot(0x0)/Pci(0x3,0x0)/NVMe(0x1,00-00-00-00-00-00-00-00)',
    'Boot0002* UEFI PXEv4 (MAC:5254005034A0)\tPciRoot(0x0)/Pci(0x2,0x0)/MAC(5254005034a0,1)/IPv4(0.0.0.00.0.0.0,0,0)',
    'Boot0003* UEFI PXEv4 (MAC:5254005034A0) 2\tPciRoot(0x0)/Pci(0x2,0x0)/MAC(5254005034a0,1)/IPv4(0.0.0.00.0.0.0,0,0)',
    'Boot0004* UEFI PXEv6 (MAC:5254005034A0)\tPciRoot(0x0)/Pci(0x2,0x0)/MAC(5254005034a0,1)/IPv6([::]:<->[::]:,0,0)',
    'Boot0005* UEFI HTTPv4 (MAC:5254005034A0)\tPciRoot(0x0)/Pci(0x2,0x0)/MAC(5254005034a0,1)/IPv4(0.0.0.00.0.0.0,0,0)/Uri()',
    'Boot0006* UEFI HTTPv6 (MAC:5254005034A0)\tPciRoot(0x0)/Pci(0x2,0x0)/MAC(5254005034a0,1)/IPv6([::]:<->[::]:,0,0)/Uri()',
    'Boot0007* EFI Internal Shell\tFvVol(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)/FvFile(7c04a583-9e3e-4f1c-ad65-e05268d0b4d1)',
    'Boot0008* debian\tHD(1,GPT,ecdd970f-95c3-43a9-8d8b-f87d091a8e06,0x800,0x40000)/File(\\EFI\\debian\\grubx64.efi)',
    '',
  ].join('\n');

  it('reads BootCurrent, BootOrder and the entries', () => {
    const p = parseEfibootmgr(afterGrub);
    expect(p.current).toBe('0002');
    expect(p.order).toEqual(['0008', '0001', '0002', '0003', '0004', '0005', '0006', '0000', '0007']);
    expect(p.entries).toHaveLength(9);
    expect(p.entries[8]).toEqual({ num: '0008', label: 'debian', path: 'HD(1,GPT,ecdd970f-95c3-43a9-8d8b-f87d091a8e06,0x800,0x40000)/File(\\EFI\\debian\\grubx64.efi)' });
  });

  it('puts the network entry the node booted from first and the installed system next, the rest in order', () => {
    const p = planUefiBootOrder(afterGrub, 'debian');
    expect(p.order).toEqual(['0002', '0008', '0001', '0003', '0004', '0005', '0006', '0000', '0007']);
    expect(p.why).toMatch(/network boot 0002 \(UEFI PXEv4 \(MAC:5254005034A0\)\) first.*then 0008 \(debian\)/);
    // Applied once, the order is what it should be: nothing to change the second time.
    const again = afterGrub.replace(/^BootOrder: .*$/m, `BootOrder: ${p.order!.join(',')}`);
    const same = planUefiBootOrder(again, 'debian');
    expect(same.order).toBeUndefined();
    expect(same.why).toMatch(/already so/);
  });

  it('finds a new entry the firmware has not put in BootOrder, and older entries of the same name', () => {
    const out = afterGrub.replace(/^BootOrder: .*$/m, 'BootOrder: 0009,0001,0002').replace(/\n$/, '\nBoot0009* debian\tHD(1,GPT,0000,0x800,0x40000)/File(\\EFI\\debian\\grubx64.efi)\n');
    expect(planUefiBootOrder(out, 'debian').order).toEqual(['0002', '0009', '0008', '0001']);
  });

  it('leaves the order alone when the machine did not boot from the network', () => {
    const fromDisk = afterGrub.replace('BootCurrent: 0002', 'BootCurrent: 0001');
    const d = planUefiBootOrder(fromDisk, 'debian');
    expect(d.order).toBeUndefined();
    expect(d.why).toMatch(/booted from 0001 \(UEFI QEMU NVMe Ctrl FERRY0 1\), not the network/);
    expect(planUefiBootOrder(afterGrub.replace(/^BootCurrent: .*\n/m, ''), 'debian').order).toBeUndefined();
  });
});

describe('retries', () => {
  it('backs off exponentially with jitter, capped', () => {
    const b = { baseMs: 100, maxMs: 1000, giveUpAfterMs: 1 };
    expect(backoffDelay(0, b, () => 0)).toBe(50);
    expect(backoffDelay(0, b, () => 1)).toBe(100);
    expect(backoffDelay(3, b, () => 1)).toBe(800);
    expect(backoffDelay(10, b, () => 1)).toBe(1000);
  });
  it('knows which network errors are worth another try', () => {
    expect(isRetriableNetworkError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isRetriableNetworkError(new TypeError('terminated', { cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }) }))).toBe(true);
    expect(isRetriableNetworkError(new FerryError('FERRY_E_LAYER_DIGEST', 'x'))).toBe(false);
  });
});

describe('error events', () => {
  it('carry the stage, what was done, and the argv and output tail of a command', () => {
    const e = new FerryError('FERRY_E_COMMAND_FAILED', 'command exited with code 1', { details: { argv: ['grub-install', '/dev/sda'], exitCode: 1, stdoutTail: '', stderrTail: 'no space' }, hint: 'h' });
    expect(errorEvent('bootloader', 'installing the bios bootloader', e)).toMatchObject({
      phase: 'bootloader', state: 'error', code: 'FERRY_E_COMMAND_FAILED',
      details: { doing: 'installing the bios bootloader', argv: ['grub-install', '/dev/sda'], exitCode: 1, stderrTail: 'no space', hint: 'h' },
    });
  });
});

/** A ustar header for the parser tests. */
function header(name: string, size: number, type = '0', extra: Partial<Record<'linkname' | 'prefix', string>> = {}): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write(type, 156);
  if (extra.linkname) h.write(extra.linkname, 157);
  h.write('ustar\0', 257);
  h.write('00', 263);
  if (extra.prefix) h.write(extra.prefix, 345);
  h.write('        ', 148);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

describe('tar reader', () => {
  it('reads entries and data split at any byte boundary', () => {
    const data = Buffer.from('hello world');
    const tar = Buffer.concat([header('a/b.txt', data.length, '0', { prefix: 'pre' }), data, Buffer.alloc(512 - data.length), header('l', 0, '2', { linkname: '/x' }), Buffer.alloc(1024)]);
    for (const step of [1, 7, 512, 100000]) {
      const seen: string[] = [];
      const p = new TarParser({ entry: (e) => seen.push(`${e.type}:${e.path}:${e.linkname}`), data: (c, o) => seen.push(`data@${o}:${c.toString()}`), entryEnd: () => seen.push('end') });
      for (let i = 0; i < tar.length; i += step) p.write(tar.subarray(i, i + step));
      p.end();
      expect(seen.filter((s) => !s.startsWith('data')).join('|')).toBe('file:pre/a/b.txt:|end|symlink:l:/x|end');
      expect(seen.filter((s) => s.startsWith('data')).map((s) => s.replace(/^data@\d+:/, '')).join('')).toBe('hello world');
      expect(p.ended).toBe(true);
    }
  });
  it('fails on a bad checksum and on a truncated stream', () => {
    const h = header('x', 5);
    h[0] ^= 1;
    const p = new TarParser({ entry() {}, data() {}, entryEnd() {} });
    expect(() => p.write(h)).toThrow(/checksum/);
    const q = new TarParser({ entry() {}, data() {}, entryEnd() {} });
    q.write(Buffer.concat([header('x', 5), Buffer.from('ab')]));
    expect(() => q.end()).toThrow(/ended inside an entry/);
  });
  it('parses PAX records with binary values', () => {
    const v = Buffer.from([0, 1, 0x0a, 0xff]);
    const rec = (k: string, val: Buffer) => {
      const body = Buffer.concat([Buffer.from(` ${k}=`), val, Buffer.from('\n')]);
      let n = body.length + 1;
      if (String(n).length + body.length !== n) n = String(n + 1).length + body.length;
      return Buffer.concat([Buffer.from(String(n)), body]);
    };
    const out = parsePax(Buffer.concat([rec('path', Buffer.from('ä/b')), rec('SCHILY.xattr.security.capability', v)]));
    expect(out[0]).toEqual(['path', Buffer.from('ä/b')]);
    expect(out[1][0]).toBe('SCHILY.xattr.security.capability');
    expect(out[1][1].equals(v)).toBe(true);
  });
});

describe('disks in use', () => {
  it('finds mounts and swap on a disk and its partitions, not on similarly named disks', () => {
    const mounts = '/dev/vda1 / ext4 rw 0 0\n/dev/sdb2 /srv xfs rw 0 0\n/dev/nvme0n1p3 /data ext4 rw 0 0\nproc /proc proc rw 0 0\n';
    const swaps = 'Filename\tType\tSize\tUsed\tPriority\n/dev/sdc1 partition 1000 0 -2\n';
    expect(disksInUse(['/dev/vda', '/dev/sdb', '/dev/sdbb', '/dev/sdc', '/dev/nvme0n1', '/dev/sdd'], mounts, swaps)).toEqual([
      { disk: '/dev/vda', device: '/dev/vda1', use: 'mounted on /' },
      { disk: '/dev/sdb', device: '/dev/sdb2', use: 'mounted on /srv' },
      { disk: '/dev/sdc', device: '/dev/sdc1', use: 'active swap' },
      { disk: '/dev/nvme0n1', device: '/dev/nvme0n1p3', use: 'mounted on /data' },
    ]);
  });
});
