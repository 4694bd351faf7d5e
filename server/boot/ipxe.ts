/**
 * Minimal iPXE rendering used by the server's `GET /boot/ipxe` route until the boot
 * environment's full renderers (same names and arguments) replace this file.
 */
import { BOOT_ROUTES } from '../../common/protocol.js';

export const DEFAULT_CONSOLE = ['console=tty0', 'console=ttyS0,115200n8'];

export interface InstallBoot {
  serverUrl: string;
  token: string;
  mac: string;
  kernelUrl?: string;
  initrdUrl?: string;
  console?: string[];
  extraArgs?: string[];
  label?: string;
}

export interface LocalBoot {
  mac?: string;
  label?: string;
  reason?: string;
}

export function bootifOf(mac: string): string {
  return '01-' + mac.toLowerCase().replace(/:/g, '-');
}

export function renderIpxeInstall(p: InstallBoot): string {
  const base = p.serverUrl.replace(/\/+$/, '');
  const args = [...(p.console ?? DEFAULT_CONSOLE), `ferry.server=${base}`, `ferry.token=${p.token}`, `BOOTIF=${bootifOf(p.mac)}`, ...(p.extraArgs ?? [])];
  return [
    '#!ipxe',
    `kernel --name vmlinuz ${p.kernelUrl ?? base + BOOT_ROUTES.kernel} initrd=initrd.img ${args.join(' ')}`,
    `initrd --name initrd.img ${p.initrdUrl ?? base + BOOT_ROUTES.initrd}`,
    'boot',
    '',
  ].join('\n');
}

export function renderIpxeLocal(p: LocalBoot = {}): string {
  const reason = (p.reason ?? 'no install armed').replace(/[^A-Za-z0-9 ._,:()-]/g, '_');
  return ['#!ipxe', `echo Ferry: ${reason}, booting from the local disk`, 'exit', ''].join('\n');
}
