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
import type { TargetRoot } from './target.js';

export interface BootloaderDecision {
  mode: 'bios' | 'uefi' | 'none';
  /** argv lists run inside the target, in order. */
  commands: string[][];
  warnings: string[];
  why: string;
}

export interface BootloaderInputs {
  override: 'auto' | 'none' | 'bios' | 'uefi';
  request?: BootloaderRequest;
  firmwareEfi: boolean;
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
  const mkconfig = find(i.view, ['update-grub']) ? [find(i.view, ['update-grub'])!] : [find(i.view, ['grub-mkconfig', 'grub2-mkconfig']) ?? '/usr/sbin/grub-mkconfig', '-o', i.view.exists('/boot/grub2') ? '/boot/grub2/grub.cfg' : '/boot/grub/grub.cfg'];
  const commands: string[][] = [];
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
    const nvram = i.firmwareEfi ? [] : ['--no-nvram'];
    commands.push([install, '--target=x86_64-efi', `--efi-directory=${esp}`, '--bootloader-id=debian', '--recheck', ...nvram]);
    // Firmware that forgets its boot entries still finds \EFI\BOOT\BOOTX64.EFI.
    commands.push([install, '--target=x86_64-efi', `--efi-directory=${esp}`, '--removable', '--no-nvram']);
  }
  commands.push(mkconfig);
  return { mode, commands, warnings, why };
}

export async function applyBootloader(d: BootloaderDecision, t: TargetRoot, progress?: ProgressSink): Promise<void> {
  await Chroot.with(t, async (c) => {
    for (const argv of d.commands) {
      progress?.({ phase: 'bootloader', state: 'info', object: argv.join(' '), message: d.why });
      const r = await c.run(argv, { timeoutMs: 10 * 60_000 });
      const out = (r.stdout + r.stderr).trim();
      if (out) progress?.({ phase: 'bootloader', state: 'info', object: argv[0], message: tail(out, 1500) });
    }
  });
}
