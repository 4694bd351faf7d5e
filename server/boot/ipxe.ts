/**
 * Network boot scripts, rendered as pure functions of their inputs (golden-file
 * tested): the iPXE script the server answers at `GET /boot/ipxe?mac=`, the
 * `boot.ipxe` chain script that TFTP hands to iPXE, and pxelinux's per-MAC
 * configuration files for legacy PXE firmware.
 *
 * What the boot environment reads from the kernel command line (initrd/init):
 *   ferry.server=URL  the image server, as the node reaches it
 *   ferry.token=TOKEN the deployment's token
 *   BOOTIF=01-aa-bb-cc-dd-ee-ff  the interface that booted (pxelinux's IPAPPEND 2 form)
 *   ferry.shell=1     a root shell on the serial console instead of the installer
 *   ferry.mode=inventory  a discovery boot (`ferry serve --discover`): report the hardware
 *                     with ferry.token (a discovery token), then ferry.finish (poweroff|stay)
 */
import { FerryError, ValidationError, type Problem } from '../../common/errors.js';
import { BOOT_ROUTES } from '../../common/protocol.js';
import { bootifOf, normalizeMac } from '../../common/mac.js';

export { bootifOf, normalizeMac } from '../../common/mac.js';

/** pxelinux's per-machine configuration file, relative to the TFTP root. */
export function pxelinuxConfigPath(mac: string): string {
  return 'pxelinux.cfg/' + bootifOf(mac);
}

/**
 * The kernel console: the last `console=` becomes /dev/console, where the init
 * writes and where its rescue shell runs. The serial line comes last so that
 * VMs and serial-over-LAN show the installer; tty0 still gets kernel messages.
 */
export const DEFAULT_CONSOLE = ['console=tty0', 'console=ttyS0,115200n8'];

/**
 * Always on an install boot. Under emulation on a busy host (QEMU TCG) the kernel's
 * check that the IO-APIC timer ticks can fail and panic the boot ("IO-APIC + timer
 * doesn't work!"); skipping the check changes nothing where the timer works.
 */
export const BASE_KERNEL_ARGS = ['no_timer_check'];

export interface InstallBoot {
  /** The server's public URL, as the node reaches it (`http://10.0.2.2:8080` from a QEMU guest). */
  serverUrl: string;
  /** The deployment's token (URL-safe characters only). */
  token: string;
  /** The MAC the node booted from; becomes BOOTIF. */
  mac: string;
  /** Default: serverUrl + /boot/vmlinuz. */
  kernelUrl?: string;
  /** Default: serverUrl + /boot/initrd.img. */
  initrdUrl?: string;
  /** Console arguments (default DEFAULT_CONSOLE). */
  console?: string[];
  /** More kernel arguments, e.g. `ferry.shell=1`. */
  extraArgs?: string[];
  /** Shown in the script's comment and on screen: the node's name. */
  label?: string;
  /** `inventory`: a discovery boot (ferry.mode=inventory) of an unknown machine; default install. */
  mode?: 'install' | 'inventory';
}

export type LocalBootMethod = 'exit' | 'sanboot';

export interface LocalBoot {
  mac?: string;
  label?: string;
  /** Why the node boots locally (shown on screen): "no install armed", "unknown machine". */
  reason?: string;
  /**
   * `exit` (default) hands control back to the firmware, which tries its next boot
   * device. `sanboot` first boots the BIOS's first hard disk (0x80) directly on
   * legacy BIOS, for firmware that does not fall through after a network boot;
   * on UEFI, or when that disk is not bootable, it still exits.
   */
  method?: LocalBootMethod;
}

// Characters that survive the kernel command line, iPXE's `${}` expansion and
// pxelinux's APPEND line without quoting.
const SAFE_ARG = /^[A-Za-z0-9._~:/?&=%+,@-]+$/;

function checkUrl(what: string, value: string, problems: Problem[]): void {
  let u: URL | undefined;
  try {
    u = new URL(value);
  } catch {
    /* reported below */
  }
  if (!u || !/^https?:$/.test(u.protocol) || !SAFE_ARG.test(value)) {
    problems.push({
      severity: 'error',
      code: 'FERRY_E_BOOT_BAD_URL',
      path: what,
      message: `"${value}" is not an http(s) URL usable on a kernel command line (no spaces, quotes, "$" or "#")`,
      hint: 'give the address nodes use to reach the server, e.g. http://192.0.2.10:8080',
    });
  }
}

function checkArg(what: string, value: string, problems: Problem[]): void {
  if (!SAFE_ARG.test(value)) {
    problems.push({
      severity: 'error',
      code: 'FERRY_E_BOOT_BAD_ARG',
      path: what,
      message: `"${value}" cannot go on a kernel command line: only letters, digits and ._~:/?&=%+,@- are allowed`,
      hint: 'kernel arguments are split at spaces and iPXE expands "$": use URL-safe values',
    });
  }
}

function trimSlash(u: string): string {
  return u.replace(/\/+$/, '');
}

interface ResolvedInstall {
  mac: string;
  what: string;
  kernelUrl: string;
  initrdUrl: string;
  args: string[];
  label: string;
}

function resolveInstall(p: InstallBoot): ResolvedInstall {
  const problems: Problem[] = [];
  let mac = '';
  try {
    mac = normalizeMac(p.mac);
  } catch (e) {
    problems.push({ severity: 'error', code: 'FERRY_E_BOOT_BAD_MAC', path: 'mac', message: (e as FerryError).message });
  }
  checkUrl('serverUrl', p.serverUrl, problems);
  const base = trimSlash(p.serverUrl);
  const kernelUrl = p.kernelUrl ?? base + BOOT_ROUTES.kernel;
  const initrdUrl = p.initrdUrl ?? base + BOOT_ROUTES.initrd;
  if (p.kernelUrl !== undefined) checkUrl('kernelUrl', p.kernelUrl, problems);
  if (p.initrdUrl !== undefined) checkUrl('initrdUrl', p.initrdUrl, problems);
  if (!p.token) problems.push({ severity: 'error', code: 'FERRY_E_BOOT_BAD_ARG', path: 'token', message: 'the deployment token is empty' });
  else checkArg('token', p.token, problems);
  const consoleArgs = p.console ?? DEFAULT_CONSOLE;
  consoleArgs.forEach((a, i) => checkArg(`console[${i}]`, a, problems));
  (p.extraArgs ?? []).forEach((a, i) => checkArg(`extraArgs[${i}]`, a, problems));
  const label = (p.label ?? '').replace(/[^A-Za-z0-9._:@-]/g, '_');
  if (problems.length) throw new ValidationError('FERRY_E_BOOT_INVALID', 'network boot parameters', problems);
  const inventory = p.mode === 'inventory';
  const args = [...consoleArgs, ...BASE_KERNEL_ARGS, `ferry.server=${base}`, `ferry.token=${p.token}`, `BOOTIF=${bootifOf(mac)}`, ...(inventory ? ['ferry.mode=inventory'] : []), ...(p.extraArgs ?? [])];
  return { mac, what: inventory ? 'inventory' : 'install', kernelUrl, initrdUrl, args, label };
}

/** The kernel command line of an install boot (without iPXE's `initrd=` argument). */
export function kernelCommandLine(p: InstallBoot): string {
  return resolveInstall(p).args.join(' ');
}

/**
 * iPXE script: fetch the boot environment over HTTP and boot it. `initrd=` names
 * the initrd for the EFI stub (UEFI iPXE needs it; BIOS ignores it). A failed
 * download retries the whole script from the server, which may have changed its
 * mind (the deployment was cancelled) in the meantime.
 */
export function renderIpxeInstall(p: InstallBoot): string {
  const r = resolveInstall(p);
  const who = r.label ? `${r.label} (${r.mac})` : r.mac;
  return [
    '#!ipxe',
    `# Ferry: ${r.what} ${who}`,
    `echo Ferry: booting the ${r.what === 'install' ? 'installer' : 'inventory'} for ${who}`,
    ':retry',
    `kernel --name vmlinuz ${r.kernelUrl} initrd=initrd.img ${r.args.join(' ')} || goto failed`,
    `initrd --name initrd.img ${r.initrdUrl} || goto failed`,
    'boot || goto failed',
    ':failed',
    'echo Ferry: could not load the boot environment, retrying in 10 seconds',
    'imgfree',
    'sleep 10',
    'goto retry',
    '',
  ].join('\n');
}

/** iPXE script that boots the local disk. */
export function renderIpxeLocal(p: LocalBoot = {}): string {
  let who = '';
  if (p.mac !== undefined) {
    const mac = normalizeMac(p.mac);
    const label = (p.label ?? '').replace(/[^A-Za-z0-9._:@-]/g, '_');
    who = label ? ` ${label} (${mac})` : ` ${mac}`;
  }
  const reason = (p.reason ?? 'no install armed').replace(/[^A-Za-z0-9 ._,:()-]/g, '_');
  // The console line starts with what an operator (and the vm tests) look for, and names the
  // node without its MAC (the comment above has both), so it fits iPXE's 80 columns for the usual
  // names: a longer line wraps there.
  const shown = p.mac === undefined ? '' : ` ${(p.label ?? '').replace(/[^A-Za-z0-9._:@-]/g, '_') || normalizeMac(p.mac)}`;
  const lines = ['#!ipxe', `# Ferry: local boot${who}: ${reason}`, `echo Ferry: booting from the local disk:${shown ? `${shown},` : ''} ${reason}`];
  if ((p.method ?? 'exit') === 'sanboot') {
    // Legacy BIOS only: EFI firmware keeps its own boot order and iPXE's exit
    // returns to it; a failed sanboot (no bootable disk) falls through to exit.
    lines.push('iseq ${platform} pcbios && sanboot --no-describe --drive 0x80 ||');
  }
  lines.push('exit', '');
  return lines.join('\n');
}

/**
 * `boot.ipxe`, served over TFTP (or named by DHCP) to iPXE: ask the server what
 * this machine should do. `netX` is the interface iPXE booted from, so a machine
 * with several NICs is known by the right MAC.
 */
export function renderIpxeChain(serverUrl: string): string {
  const problems: Problem[] = [];
  checkUrl('serverUrl', serverUrl, problems);
  if (problems.length) throw new ValidationError('FERRY_E_BOOT_INVALID', 'network boot parameters', problems);
  const url = `${trimSlash(serverUrl)}${BOOT_ROUTES.ipxe}?mac=\${netX/mac}`;
  return [
    '#!ipxe',
    '# Ferry: ask the image server what this machine boots (install or local disk).',
    'isset ${netX/ip} || dhcp || goto failed',
    ':retry',
    `chain --autofree ${url} || goto failed`,
    // The server's script returned (a local boot's `exit`): leave too, so that the firmware
    // tries its next boot device instead of falling into the retry loop below.
    'exit',
    ':failed',
    `echo Ferry: could not reach ${trimSlash(serverUrl)}, retrying in 10 seconds`,
    'sleep 10',
    'goto retry',
    '',
  ].join('\n');
}

/**
 * pxelinux configuration for an install. Kernel and initrd over HTTP need
 * `lpxelinux.0` (Debian package pxelinux); with plain `pxelinux.0` give TFTP
 * paths relative to the TFTP root as kernelUrl/initrdUrl instead.
 */
export function renderPxelinuxInstall(p: InstallBoot): string {
  const r = resolveInstall(p);
  const who = r.label ? `${r.label} (${r.mac})` : r.mac;
  return [
    `# Ferry: ${r.what} ${who}`,
    'DEFAULT ferry-install',
    'PROMPT 0',
    'TIMEOUT 0',
    '',
    'LABEL ferry-install',
    `  MENU LABEL Ferry: ${r.what} ${who}`,
    `  KERNEL ${r.kernelUrl}`,
    `  INITRD ${r.initrdUrl}`,
    `  APPEND ${r.args.join(' ')}`,
    '',
  ].join('\n');
}

/** pxelinux configuration that boots the local disk (also the `default` file for unknown machines). */
export function renderPxelinuxLocal(p: LocalBoot = {}): string {
  let who = '';
  if (p.mac !== undefined) who = ' ' + normalizeMac(p.mac);
  const reason = (p.reason ?? 'no install armed').replace(/[^A-Za-z0-9 ._,:()-]/g, '_');
  return [
    `# Ferry: local boot${who}: ${reason}`,
    'DEFAULT local',
    'PROMPT 0',
    'TIMEOUT 0',
    '',
    'LABEL local',
    '  MENU LABEL Ferry: boot from the local disk',
    // LOCALBOOT 0 returns to the BIOS, which boots its next device (normally the disk).
    '  LOCALBOOT 0',
    '',
  ].join('\n');
}

/** What the server decided for one machine. */
export type BootDecision = ({ action: 'install' } & InstallBoot) | ({ action: 'local' } & LocalBoot);

/** The iPXE answer for a decision: the one call `GET /boot/ipxe` needs. */
export function renderIpxeFor(d: BootDecision): string {
  return d.action === 'install' ? renderIpxeInstall(d) : renderIpxeLocal(d);
}

/** The pxelinux file for a decision. */
export function renderPxelinuxFor(d: BootDecision): string {
  return d.action === 'install' ? renderPxelinuxInstall(d) : renderPxelinuxLocal(d);
}
