/**
 * The bootloader: decide (pure) what to install from the deployment's override, the layout's
 * request, the firmware and what the image has; then run the image's own GRUB inside the target.
 */
import type { ProgressSink } from '../common/progress.js';
import { FerryError } from '../common/errors.js';
import { tail } from '../common/run.js';
import { Chroot } from './chroot.js';
import type { TargetView } from './customize/plan.js';
import type { BootloaderRequest } from './disk/index.js';
import type { TargetRoot } from '../layers/target.js';

export interface BootloaderDecision {
  mode: 'bios' | 'uefi' | 'none';
  /** argv lists run inside the target, in order. */
  commands: string[][];
  /**
   * After the commands: read the firmware's boot entries with this efibootmgr (inside the target)
   * and keep the network entry the machine booted from first (planUefiBootOrder).
   */
  uefiBootOrder?: { efibootmgr: string; bootloaderId: string };
  warnings: string[];
  why: string;
  /**
   * After the commands: the GRUB config (a path in the target) whose kernel command lines get
   * `root=UUID=…` for `root=DEVICE` (rootByUuid). grub-mkconfig writes the device name when
   * /dev/disk/by-uuid is missing, as it is without udev (the boot environment, many hosts).
   */
  rootByUuid?: { config: string; device: string; uuid: string };
}

export interface BootloaderInputs {
  override: 'auto' | 'none' | 'bios' | 'uefi';
  request?: BootloaderRequest;
  firmwareEfi: boolean;
  /** The machine being installed is the one running the installer (InstallOptions.onNode). */
  ownFirmware?: boolean;
  view: TargetView;
  /** Installed into a directory: there is no disk to put boot code on. */
  directoryInstall?: boolean;
}

function find(view: TargetView, names: string[]): string | undefined {
  for (const n of names) for (const d of ['/usr/sbin', '/sbin', '/usr/bin', '/bin']) if (view.exists(`${d}/${n}`)) return `${d}/${n}`;
  return undefined;
}

export function planBootloader(i: BootloaderInputs): BootloaderDecision {
  const warnings: string[] = [];
  const none = (why: string): BootloaderDecision => ({ mode: 'none', commands: [], warnings, why });
  if (i.override === 'none') return none('the node or deployment says bootloader none');
  if (i.request?.mode === 'none' && i.override === 'auto') return none('the layout says no bootloader');
  const said = (i.override !== 'auto' ? i.override : i.request?.mode) as 'bios' | 'uefi' | undefined;
  const mode: 'bios' | 'uefi' = said ?? (i.firmwareEfi ? 'uefi' : 'bios');
  const why = said ? `${i.override !== 'auto' ? 'the node or deployment' : 'the layout'} asks for ${mode}` : `detected ${mode} firmware`;
  const install = find(i.view, ['grub-install', 'grub2-install']);
  if (!install) {
    if (said) {
      throw new FerryError('FERRY_E_BOOTLOADER_MISSING', `${why}, but the image has no grub-install`, {
        details: { mode }, hint: `install GRUB in the image (Debian: grub-${mode === 'uefi' ? 'efi-amd64' : 'pc'}), or set the bootloader to none`,
      });
    }
    warnings.push('the image has no GRUB (grub-install) and the layout names no bootloader: none installed; the disk may not boot by itself');
    return none('no bootloader in the image');
  }
  if (i.directoryInstall) {
    warnings.push('installed into a directory: no disk to put a bootloader on');
    return none('directory install');
  }
  const grubCfg = i.view.exists('/boot/grub2') ? '/boot/grub2/grub.cfg' : '/boot/grub/grub.cfg';
  const mkconfig = find(i.view, ['update-grub']) ? [find(i.view, ['update-grub'])!] : [find(i.view, ['grub-mkconfig', 'grub2-mkconfig']) ?? '/usr/sbin/grub-mkconfig', '-o', grubCfg];
  const rootByUuid = i.request?.rootDevice && i.request.rootUuid ? { config: grubCfg, device: i.request.rootDevice, uuid: i.request.rootUuid } : undefined;
  const commands: string[][] = [];
  // Boot entries go into the firmware only of the machine being installed, never a host's.
  const writeNvram = i.firmwareEfi && !!i.ownFirmware;
  if (mode === 'bios') {
    const targets = i.request?.targets ?? [];
    if (!targets.length) {
      throw new FerryError('FERRY_E_BOOTLOADER_TARGET', 'a BIOS bootloader needs a disk to install to, and the disk plan names none', {
        hint: 'name the disk in the layout\'s <bootloader><target dev="/dev/sda"/></bootloader>',
      });
    }
    for (const t of targets) commands.push([install, '--target=i386-pc', '--recheck', t]);
  } else {
    const esp = i.request?.esp?.mountpoint ?? (i.view.exists('/boot/efi') ? '/boot/efi' : undefined);
    if (!esp) {
      throw new FerryError('FERRY_E_BOOTLOADER_TARGET', 'a UEFI bootloader needs an EFI system partition, and the layout has none mounted', {
        hint: 'add a vfat partition with the esp flag mounted on /boot/efi to the layout',
      });
    }
    const nvram = writeNvram ? [] : ['--no-nvram'];
    commands.push([install, '--target=x86_64-efi', `--efi-directory=${esp}`, `--bootloader-id=${BOOTLOADER_ID}`, '--recheck', ...nvram]);
    // Firmware that forgets its boot entries still finds \EFI\BOOT\BOOTX64.EFI.
    commands.push([install, '--target=x86_64-efi', `--efi-directory=${esp}`, '--removable', '--no-nvram']);
  }
  commands.push(mkconfig);
  if (mode === 'uefi' && writeNvram) {
    const efibootmgr = find(i.view, ['efibootmgr']);
    if (efibootmgr) return { mode, commands, warnings, why, uefiBootOrder: { efibootmgr, bootloaderId: BOOTLOADER_ID }, ...(rootByUuid ? { rootByUuid } : {}) };
    warnings.push('the image has no efibootmgr: the firmware boot order stays as grub-install left it (its own entry first), so this machine may not boot from the network again until the order is changed in its setup');
  }
  return { mode, commands, warnings, why, ...(rootByUuid ? { rootByUuid } : {}) };
}

/**
 * The kernel command lines of a GRUB config with the root named by UUID: every `root=DEVICE`
 * on a `linux` line becomes `root=UUID=…` (pure). GRUB's 10_linux names the device when
 * /dev/disk/by-uuid/UUID does not exist, and a device name such as /dev/loop0p1 (a disk written
 * on a host) or /dev/sdb2 (names move between boots) does not find the root at boot.
 * `changed` counts the lines rewritten; `byUuid` the kernel lines that name the root by UUID.
 */
export function rootByUuid(cfg: string, device: string, uuid: string): { text: string; changed: number; byUuid: number; kernels: number } {
  let changed = 0;
  let byUuid = 0;
  let kernels = 0;
  const esc = device.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`(\\s)root=${esc}(?=\\s|$)`, 'g');
  const text = cfg
    .split('\n')
    .map((line) => {
      if (!/^\s*linux(16|efi)?\s/.test(line)) return line;
      kernels++;
      const out = line.replace(re, `$1root=UUID=${uuid}`);
      if (out !== line) changed++;
      if (out.includes(`root=UUID=${uuid}`)) byUuid++;
      return out;
    })
    .join('\n');
  return { text, changed, byUuid, kernels };
}

const BOOTLOADER_ID = 'debian';

export interface UefiEntry {
  num: string;
  label: string;
  path: string;
}

export interface UefiBootOrderPlan {
  /** The new BootOrder, or undefined to leave the firmware as it is. */
  order?: string[];
  /** What was decided and why, for the install's log. */
  why: string;
}

/** The entries, BootCurrent and BootOrder from `efibootmgr` (versions 15 to 18) output. */
export function parseEfibootmgr(out: string): { current?: string; order: string[]; entries: UefiEntry[] } {
  const current = /^BootCurrent:\s*([0-9A-Fa-f]{4})\s*$/m.exec(out)?.[1]?.toUpperCase();
  const order = (/^BootOrder:\s*(\S*)\s*$/m.exec(out)?.[1] ?? '').split(',').filter((x) => /^[0-9A-Fa-f]{4}$/.test(x)).map((x) => x.toUpperCase());
  const entries: UefiEntry[] = [];
  for (const m of out.matchAll(/^Boot([0-9A-Fa-f]{4})\*? (.*)$/gm)) {
    // The label and the device path are separated by a tab (by spaces in some versions' -v).
    const [label, ...rest] = m[2].split('\t');
    entries.push({ num: m[1].toUpperCase(), label: label.trim(), path: rest.join('\t').trim() });
  }
  return { current, order, entries };
}

function isNetwork(e: UefiEntry): boolean {
  return /PXE|HTTP|Network/i.test(e.label) || /\b(MAC|IPv4|IPv6|Uri)\(/.test(e.path);
}

/**
 * Ferry decides every boot of a node from the server (install, or local disk), so a node that
 * network-booted into the installer must network-boot again. grub-install puts its new entry
 * first in BootOrder, which on real firmware would bypass the network from then on and take the
 * machine out of Ferry's hands (curtin's reorder_uefi does the same for MAAS). So: the entry the
 * machine booted from first, the installed system's entry next (where iPXE's "boot from the
 * local disk" exit lands), then the rest in their order. A machine that booted from a disk, USB
 * stick or CD is left as grub-install made it.
 */
export function planUefiBootOrder(out: string, bootloaderId: string): UefiBootOrderPlan {
  const { current, order, entries } = parseEfibootmgr(out);
  if (!current) return { why: 'efibootmgr names no BootCurrent: boot order left as it is' };
  const cur = entries.find((e) => e.num === current);
  if (!cur || !isNetwork(cur)) return { why: `booted from ${current}${cur ? ` (${cur.label})` : ''}, not the network: boot order left as grub-install set it` };
  const own = order.filter((n) => entries.find((e) => e.num === n)?.label === bootloaderId);
  // An entry grub-install just made but the firmware has not put in BootOrder yet.
  for (const e of entries) if (e.label === bootloaderId && !own.includes(e.num)) own.push(e.num);
  const next = [...new Set([current, ...own, ...order])];
  const label = (n: string) => `${n} (${entries.find((e) => e.num === n)?.label ?? '?'})`;
  const why = `network boot ${label(current)} first, so the server still decides every boot; then ${own.length ? own.map(label).join(', ') : `no "${bootloaderId}" entry`}`;
  if (next.join(',') === order.join(',')) return { why: `${why} (already so)` };
  return { order: next, why };
}

export async function applyBootloader(d: BootloaderDecision, t: TargetRoot, progress?: ProgressSink): Promise<void> {
  await Chroot.with(t, async (c) => {
    for (const argv of d.commands) {
      progress?.({ phase: 'bootloader', state: 'info', object: argv.join(' '), message: d.why });
      const r = await c.run(argv, { timeoutMs: 10 * 60_000 });
      const out = (r.stdout + r.stderr).trim();
      if (out) progress?.({ phase: 'bootloader', state: 'info', object: argv[0], message: tail(out, 1500) });
    }
    if (d.rootByUuid) {
      const { config, device, uuid } = d.rootByUuid;
      const cfg = t.readText(config);
      if (cfg === undefined) {
        progress?.({ phase: 'bootloader', state: 'warning', object: config, message: `${config} is missing after ${d.commands.at(-1)?.[0]}: the kernel command line could not be checked for root=UUID=${uuid}` });
      } else {
        const r = rootByUuid(cfg, device, uuid);
        if (r.changed) t.writeFile(config, r.text, { mode: (t.lstat(config)?.mode ?? 0o444) & 0o7777 });
        const msg = r.changed
          ? `root=${device} became root=UUID=${uuid} on ${r.changed} kernel line(s) of ${config} (GRUB names the device when /dev/disk/by-uuid is missing)`
          : `${config}: ${r.byUuid} of ${r.kernels} kernel line(s) name the root by UUID`;
        progress?.({ phase: 'bootloader', state: r.byUuid < r.kernels ? 'warning' : 'info', object: config, message: r.byUuid < r.kernels ? `${msg}; the others may not find the root at boot` : msg });
      }
    }
    if (d.uefiBootOrder) {
      const { efibootmgr, bootloaderId } = d.uefiBootOrder;
      const p = planUefiBootOrder((await c.run([efibootmgr], { timeoutMs: 60_000 })).stdout, bootloaderId);
      if (p.order) await c.run([efibootmgr, '--bootorder', p.order.join(',')], { timeoutMs: 60_000 });
      progress?.({ phase: 'bootloader', state: 'info', object: 'uefi boot order', message: p.order ? `BootOrder ${p.order.join(',')}: ${p.why}` : p.why });
    }
  });
}
