import { describe, expect, it } from 'vitest';
import {
  bootifOf,
  kernelCommandLine,
  normalizeMac,
  pxelinuxConfigPath,
  renderIpxeChain,
  renderIpxeFor,
  renderIpxeInstall,
  renderIpxeLocal,
  renderPxelinuxFor,
  renderPxelinuxInstall,
  renderPxelinuxLocal,
} from '../../../server/boot/ipxe.js';
import { expectGolden } from './golden.js';

const install = {
  serverUrl: 'http://10.0.2.2:8080/',
  token: 'dpl_3f9a.Zx-_~',
  mac: '52-54-00-12-34-56',
  label: 'web01',
};

describe('MAC addresses', () => {
  it('normalizes every common spelling', () => {
    for (const m of ['52:54:00:12:34:56', '52-54-00-12-34-56', '525400123456', '5254.0012.3456', '01-52-54-00-12-34-56', ' 52:54:00:12:34:56 ', '52:54:00:12:34:56'.toUpperCase()]) {
      expect(normalizeMac(m)).toBe('52:54:00:12:34:56');
    }
  });
  it('refuses what is not a MAC', () => {
    for (const m of ['', '52:54:00:12:34', '52:54-00:12:34:56', 'zz:54:00:12:34:56', '52:54:00:12:34:56:78']) {
      expect(() => normalizeMac(m), m).toThrow(expect.objectContaining({ code: 'FERRY_E_BOOT_BAD_MAC' }));
    }
  });
  it('derives BOOTIF and the pxelinux file name', () => {
    expect(bootifOf('52:54:00:AB:CD:EF')).toBe('01-52-54-00-ab-cd-ef');
    expect(pxelinuxConfigPath('52:54:00:AB:CD:EF')).toBe('pxelinux.cfg/01-52-54-00-ab-cd-ef');
  });
});

describe('kernel command line', () => {
  it('carries the console, the server, the token and BOOTIF', () => {
    expect(kernelCommandLine(install)).toBe(
      'console=tty0 console=ttyS0,115200n8 no_timer_check ferry.server=http://10.0.2.2:8080 ferry.token=dpl_3f9a.Zx-_~ BOOTIF=01-52-54-00-12-34-56',
    );
  });
  it('takes other consoles and extra arguments', () => {
    expect(kernelCommandLine({ ...install, console: ['console=ttyS1,9600'], extraArgs: ['ferry.shell=1'] })).toBe(
      'console=ttyS1,9600 no_timer_check ferry.server=http://10.0.2.2:8080 ferry.token=dpl_3f9a.Zx-_~ BOOTIF=01-52-54-00-12-34-56 ferry.shell=1',
    );
  });
  it('reports every bad input at once, with where it is', () => {
    try {
      kernelCommandLine({ serverUrl: 'ftp://x y', token: 'a b', mac: 'nope', extraArgs: ['ok=1', 'x=${evil}'] });
      expect.unreachable();
    } catch (e: any) {
      expect(e.code).toBe('FERRY_E_BOOT_INVALID');
      expect(e.problems.map((p: any) => `${p.path}:${p.code}`)).toEqual([
        'mac:FERRY_E_BOOT_BAD_MAC',
        'serverUrl:FERRY_E_BOOT_BAD_URL',
        'token:FERRY_E_BOOT_BAD_ARG',
        'extraArgs[1]:FERRY_E_BOOT_BAD_ARG',
      ]);
    }
  });
  it('refuses an empty token', () => {
    expect(() => kernelCommandLine({ ...install, token: '' })).toThrow(/token is empty/);
  });
});

describe('iPXE scripts', () => {
  it('install', () => expectGolden('ipxe-install.ipxe', renderIpxeInstall(install)));
  it('install with explicit kernel/initrd URLs and a shell', () =>
    expectGolden(
      'ipxe-install-custom.ipxe',
      renderIpxeInstall({
        serverUrl: 'https://ferry.example.com',
        token: 'T0K3N',
        mac: 'aa:bb:cc:dd:ee:ff',
        kernelUrl: 'http://cache.example.com/boot/vmlinuz',
        initrdUrl: 'http://cache.example.com/boot/initrd-generic.img',
        extraArgs: ['ferry.shell=1'],
      }),
    ));
  it('local boot (exit)', () => expectGolden('ipxe-local.ipxe', renderIpxeLocal({ mac: '52:54:00:12:34:56', label: 'web01' })));
  it('local boot for an unknown machine, with the BIOS sanboot fallback', () =>
    expectGolden('ipxe-local-sanboot.ipxe', renderIpxeLocal({ mac: '52:54:00:12:34:56', reason: 'unknown machine', method: 'sanboot' })));
  it('local boot without a MAC', () => expectGolden('ipxe-local-anonymous.ipxe', renderIpxeLocal()));
  it('chain script', () => expectGolden('boot.ipxe', renderIpxeChain('http://192.0.2.10:8080')));
  it('chain script refuses a bad server URL', () =>
    expect(() => renderIpxeChain('http://x/$(reboot)')).toThrow(expect.objectContaining({ code: 'FERRY_E_BOOT_INVALID' })));
  it('dispatches on the decision', () => {
    expect(renderIpxeFor({ action: 'install', ...install })).toBe(renderIpxeInstall(install));
    expect(renderIpxeFor({ action: 'local', mac: install.mac })).toBe(renderIpxeLocal({ mac: install.mac }));
  });
  it('escapes labels and reasons that would break the script', () => {
    const s = renderIpxeLocal({ mac: '52:54:00:12:34:56', label: 'a b;${x}', reason: 'why; ${x} && reboot' });
    expect(s).not.toMatch(/\$\{x\}|;|&&/);
  });
});

describe('pxelinux configuration', () => {
  it('install', () => expectGolden('pxelinux-install.cfg', renderPxelinuxInstall(install)));
  it('local', () => expectGolden('pxelinux-local.cfg', renderPxelinuxLocal({ mac: install.mac })));
  it('default (unknown machines)', () => expectGolden('pxelinux-default.cfg', renderPxelinuxLocal({ reason: 'unknown machine' })));
  it('dispatches on the decision', () => {
    expect(renderPxelinuxFor({ action: 'install', ...install })).toBe(renderPxelinuxInstall(install));
    expect(renderPxelinuxFor({ action: 'local' })).toBe(renderPxelinuxLocal());
  });
});
