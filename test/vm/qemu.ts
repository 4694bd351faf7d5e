/**
 * The QEMU command line of a guest, planned from its options: pure, so it can be read and
 * tested without QEMU.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { FerryError } from '../../common/errors.js';

export type Firmware = 'bios' | 'uefi';
export type DiskBus = 'virtio' | 'sata' | 'nvme';

export interface DiskSpec {
  /** Size of a new disk (bytes or a qemu-img size such as "4G"); ignored when `file` exists. */
  size?: string | number;
  /** Use this file instead of creating one in the guest's directory. */
  file?: string;
  format?: 'qcow2' | 'raw';
  bus?: DiskBus;
  /** Serial number the guest sees (shows up in /dev/disk/by-id). */
  serial?: string;
}

export interface NetSpec {
  mac?: string;
  /** Directory served by QEMU's built-in TFTP server. */
  tftpDir?: string;
  /** DHCP boot file name (inside tftpDir), e.g. boot.ipxe. */
  bootfile?: string;
  /** Boot from the network before the disks. */
  boot?: boolean;
  /**
   * A tap device instead of QEMU's user network: the guest is on a real layer-2 segment (the netns
   * harness's bridge, test/harness/netns.ts `taps`), where DHCP, TFTP and multicast are the
   * segment's own. QEMU is started inside `netns`, the namespace the tap lives in.
   */
  tap?: { ifname: string; netns: string };
}

export interface GuestOptions {
  /** Short name used in the directory name and messages. */
  name: string;
  firmware?: Firmware;
  memoryMiB?: number;
  cpus?: number;
  disks?: DiskSpec[];
  /** User-mode network with one virtio-net NIC; false for none. */
  net?: NetSpec | false;
  /** Direct kernel boot. */
  kernel?: { kernel: string; initrd?: string; append?: string };
  /**
   * Who orders the boot devices. 'qemu' (default): the NIC (when net.boot) and then the disks get
   * QEMU bootindexes, which OVMF and SeaBIOS follow whatever their own settings say. 'firmware'
   * (UEFI only): no bootindex, so OVMF boots by the BootOrder in its NVRAM variables, as real UEFI
   * firmware does, and what the installed system wrote there (efibootmgr) decides the next boot.
   */
  bootOrder?: 'qemu' | 'firmware';
  /** What a guest reboot does: reset and go on (default), or end QEMU. */
  onReboot?: 'reset' | 'exit';
  accel?: 'auto' | 'tcg' | 'kvm';
  /** Parent of the guest's directory (default: the system temp dir). */
  baseDir?: string;
  /** Extra QEMU arguments. */
  extraArgs?: string[];
}

/** Plan the QEMU argv for a guest: pure, so it can be read and tested without QEMU. */
export function qemuArgv(opts: GuestOptions, ctx: { accel: 'tcg' | 'kvm'; dir: string; disks: { file: string; format: string; bus: DiskBus; serial: string }[]; varsFile?: string }): string[] {
  const a: string[] = ['qemu-system-x86_64', '-name', opts.name, '-machine', 'q35', '-accel', ctx.accel];
  // -cpu max under TCG offers SSE4/AVX that Node's V8 and modern userlands expect.
  a.push('-cpu', ctx.accel === 'kvm' ? 'host' : 'max');
  a.push('-m', String(opts.memoryMiB ?? 1536), '-smp', String(opts.cpus ?? 1));
  a.push('-display', 'none', '-vga', 'none', '-monitor', 'none', '-nodefaults', '-no-user-config');
  a.push('-chardev', `stdio,id=con0,signal=off,logfile=${join(ctx.dir, 'console.log')}`, '-serial', 'chardev:con0');
  // Entropy for the guest: systemd, ssh and Node's crypto block without it.
  a.push('-device', 'virtio-rng-pci');
  if ((opts.firmware ?? 'bios') === 'bios') {
    // SeaBIOS's serial console: firmware, option ROM (iPXE) and GRUB text output also appear
    // on the serial line, where the tests read it. The file holds the port, 0x3f8, as an integer.
    a.push('-fw_cfg', `name=etc/sercon-port,file=${join(ctx.dir, 'sercon-port')}`);
  } else {
    a.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`);
    a.push('-drive', `if=pflash,format=raw,unit=1,file=${ctx.varsFile}`);
  }
  if (opts.bootOrder === 'firmware' && opts.firmware !== 'uefi') {
    throw new FerryError('FERRY_E_USAGE', `guest ${opts.name}: bootOrder 'firmware' needs UEFI firmware (SeaBIOS has no boot order of its own to follow)`);
  }
  let bootIndex = 1;
  const byQemu = opts.bootOrder !== 'firmware';
  if (opts.net) {
    const n = opts.net;
    if (n.tap && (n.tftpDir || n.bootfile)) throw new FerryError('FERRY_E_USAGE', `guest ${opts.name}: tftpDir and bootfile belong to QEMU's user network; on a tap the segment's own DHCP and TFTP answer`);
    let nd = n.tap ? `tap,id=n0,ifname=${n.tap.ifname},script=no,downscript=no` : 'user,id=n0';
    if (n.tftpDir) nd += `,tftp=${n.tftpDir}`;
    if (n.bootfile) nd += `,bootfile=${n.bootfile}`;
    a.push('-netdev', nd);
    let dev = `virtio-net-pci,netdev=n0,mac=${n.mac ?? randomMac()}`;
    if (!n.boot) dev += ',romfile=';
    else if (byQemu) dev += `,bootindex=${bootIndex++}`;
    a.push('-device', dev);
  }
  ctx.disks.forEach((d, i) => {
    a.push('-drive', `file=${d.file},format=${d.format},if=none,id=disk${i},cache=unsafe,discard=unmap`);
    const bi = byQemu ? `,bootindex=${bootIndex++}` : '';
    if (d.bus === 'virtio') a.push('-device', `virtio-blk-pci,drive=disk${i},serial=${d.serial}${bi}`);
    else if (d.bus === 'nvme') a.push('-device', `nvme,drive=disk${i},serial=${d.serial}${bi}`);
    else a.push('-device', `ide-hd,drive=disk${i},bus=ide.${i},serial=${d.serial}${bi}`);
  });
  if (opts.kernel) {
    a.push('-kernel', opts.kernel.kernel);
    if (opts.kernel.initrd) a.push('-initrd', opts.kernel.initrd);
    a.push('-append', opts.kernel.append ?? 'console=ttyS0 no_timer_check');
  }
  if (opts.onReboot === 'exit') a.push('-action', 'reboot=shutdown');
  a.push(...(opts.extraArgs ?? []));
  return a;
}

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

/** A locally administered unicast MAC (52:54:00 is QEMU's prefix). */
export function randomMac(): string {
  const b = randomBytes(3);
  return ['52', '54', '00', ...[...b].map((x) => x.toString(16).padStart(2, '0'))].join(':');
}
