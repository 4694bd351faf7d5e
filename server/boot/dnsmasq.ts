/**
 * A dnsmasq configuration for network boot in proxy-DHCP mode: the site's DHCP
 * server keeps handing out addresses, dnsmasq only adds the boot information.
 * Plain PXE firmware is chained to iPXE (undionly.kpxe on BIOS, ipxe.efi on UEFI,
 * loaded by TFTP); iPXE is told to fetch boot.ipxe, which asks the Ferry server
 * `GET /boot/ipxe?mac=…` what this machine boots. Pure: the caller finds the
 * interface's subnet.
 */
import { ValidationError, type Problem } from '../../common/errors.js';

export interface DnsmasqConfigOptions {
  /** The interface facing the machines to boot. */
  interface: string;
  /** That interface's IPv4 network address and prefix length ("192.0.2.0/24"). */
  subnet: string;
  /** The Ferry server's public URL (for the comment and boot.ipxe). */
  serverUrl: string;
  /** The TFTP server holding undionly.kpxe, ipxe.efi and boot.ipxe (an IPv4 address). */
  tftpServer: string;
  /** Let dnsmasq serve TFTP itself from this directory (instead of `ferry serve --tftp`). */
  dnsmasqTftpRoot?: string;
  /** Boot file names, relative to the TFTP root. */
  biosLoader?: string;
  efiLoader?: string;
  chainScript?: string;
  /**
   * Full DHCP instead of proxy-DHCP (`--dhcp-range START,END`): dnsmasq hands out addresses from
   * this range itself, on a network where it is the only DHCP server (a lab segment, a test bridge).
   */
  dhcpRange?: { start: string; end: string };
}

const IFACE_RE = /^[A-Za-z0-9_.:@-]{1,15}$/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const FILE_RE = /^[A-Za-z0-9._/-]+$/;

/** Network address of an IPv4 address with a prefix length. */
export function ipv4Network(address: string, prefix: number): string {
  const n = address.split('.').reduce((a, o) => (a << 8) | Number(o), 0) >>> 0;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const net = (n & mask) >>> 0;
  return [24, 16, 8, 0].map((s) => (net >>> s) & 255).join('.');
}

function prefixToMask(prefix: number): string {
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (mask >>> s) & 255).join('.');
}

export function renderDnsmasqConfig(o: DnsmasqConfigOptions): string {
  const problems: Problem[] = [];
  const bad = (path: string, message: string, hint?: string) => problems.push({ severity: 'error', code: 'FERRY_E_PXE_CONFIG', path, message, hint });
  if (!IFACE_RE.test(o.interface)) bad('interface', `"${o.interface}" is not a network interface name`);
  const sm = o.subnet.match(/^([\d.]+)\/(\d{1,2})$/);
  if (!sm || !IPV4_RE.test(sm[1]) || Number(sm[2]) > 32) bad('subnet', `"${o.subnet}" is not an IPv4 subnet like 192.0.2.0/24`);
  if (!IPV4_RE.test(o.tftpServer)) bad('tftpServer', `"${o.tftpServer}" is not an IPv4 address`, 'firmware reaches TFTP by address: give --tftp-server A.B.C.D');
  let url: URL | undefined;
  try {
    url = new URL(o.serverUrl);
  } catch {
    /* reported below */
  }
  if (!url || !/^https?:$/.test(url.protocol) || /[\s"'$#]/.test(o.serverUrl)) bad('serverUrl', `"${o.serverUrl}" is not an http(s) URL`);
  const bios = o.biosLoader ?? 'undionly.kpxe';
  const efi = o.efiLoader ?? 'ipxe.efi';
  const chain = o.chainScript ?? 'boot.ipxe';
  for (const [k, v] of [['biosLoader', bios], ['efiLoader', efi], ['chainScript', chain]] as const) {
    // dnsmasq appends ".0" to a PXE boot file name without a dot.
    if (!FILE_RE.test(v) || v.includes('..') || !v.includes('.')) bad(k, `"${v}" must be a relative file name with an extension`);
  }
  const ipNum = (a: string) => a.split('.').reduce((n, x) => n * 256 + Number(x), 0);
  if (o.dhcpRange) {
    const { start, end } = o.dhcpRange;
    if (!IPV4_RE.test(start) || !IPV4_RE.test(end)) bad('dhcpRange', `"${start},${end}" is not a range of two IPv4 addresses`, 'write --dhcp-range 192.0.2.100,192.0.2.199');
    else if (ipNum(start) > ipNum(end)) bad('dhcpRange', `the range ${start},${end} ends before it starts`, 'give the lower address first');
    else if (sm && IPV4_RE.test(sm[1]) && Number(sm[2]) <= 32) {
      const net = ipv4Network(sm[1], Number(sm[2]));
      for (const a of [start, end]) {
        if (ipv4Network(a, Number(sm[2])) !== net) bad('dhcpRange', `${a} is not in the subnet ${net}/${sm[2]}`, `give a range inside the interface's subnet ${net}/${sm[2]}`);
      }
    }
  }
  if (o.dnsmasqTftpRoot !== undefined && (!o.dnsmasqTftpRoot.startsWith('/') || /[\s,"'#]/.test(o.dnsmasqTftpRoot))) {
    bad('dnsmasqTftpRoot', `"${o.dnsmasqTftpRoot}" must be an absolute directory path without spaces or commas`);
  }
  if (problems.length) throw new ValidationError('FERRY_E_PXE_CONFIG', 'dnsmasq configuration', problems);
  const [net, prefix] = [ipv4Network(sm![1], Number(sm![2])), Number(sm![2])];
  const server = o.serverUrl.replace(/\/+$/, '');
  const t = o.tftpServer;
  const full = o.dhcpRange;
  const lines = [
    full
      ? `# Ferry network boot: dnsmasq as the DHCP server on ${o.interface} (${net}/${prefix}), addresses ${full.start}-${full.end}.`
      : `# Ferry network boot: dnsmasq in proxy-DHCP mode on ${o.interface} (${net}/${prefix}).`,
    full ? `# dnsmasq hands out the addresses itself: it must be the only DHCP server on this network.` : `# The site's DHCP server keeps handing out addresses; this adds the boot information.`,
    `# PXE firmware → iPXE (TFTP ${t}: ${bios}, ${efi}) → ${chain} → ${server}/boot/ipxe?mac=…`,
    `# Generated by: ferry pxe dnsmasq-config. Run: dnsmasq --keep-in-foreground --conf-file=THIS_FILE`,
    '',
    `# No DNS service: only DHCP${full ? '' : ' (proxy)'} for booting.`,
    'port=0',
    `interface=${o.interface}`,
    'bind-interfaces',
    full ? `dhcp-range=${full.start},${full.end},${prefixToMask(prefix)},1h` : `dhcp-range=${net},proxy,${prefixToMask(prefix)}`,
    'log-dhcp',
    '',
    '# iPXE announces itself with user class "iPXE" (and option 175).',
    'dhcp-userclass=set:ipxe,iPXE',
    'dhcp-match=set:ipxe,175',
    '',
  ];
  if (full) {
    // A DHCP server names the boot file itself (options 66/67); no PXE boot menu is needed.
    lines.push(
      '# UEFI firmware announces its architecture (option 93: 7 and 9 are x86-64 EFI).',
      'dhcp-match=set:efi,option:client-arch,7',
      'dhcp-match=set:efi,option:client-arch,9',
      '',
      '# Plain PXE firmware: load iPXE over TFTP; iPXE: run the chain script.',
      `dhcp-boot=tag:!ipxe,tag:!efi,${bios},,${t}`,
      `dhcp-boot=tag:!ipxe,tag:efi,${efi},,${t}`,
      `dhcp-boot=tag:ipxe,${chain},,${t}`,
    );
  } else lines.push(
    '# Plain PXE firmware: load iPXE over TFTP.',
    `pxe-service=tag:!ipxe,x86PC,"Ferry: network boot (iPXE)",${bios},${t}`,
    `pxe-service=tag:!ipxe,X86-64_EFI,"Ferry: network boot (iPXE, UEFI)",${efi},${t}`,
    `pxe-service=tag:!ipxe,BC_EFI,"Ferry: network boot (iPXE, UEFI)",${efi},${t}`,
    '',
    `# iPXE: run ${chain}, which asks the Ferry server what this machine boots.`,
    `pxe-service=tag:ipxe,x86PC,"Ferry",${chain},${t}`,
    `pxe-service=tag:ipxe,X86-64_EFI,"Ferry",${chain},${t}`,
    `pxe-service=tag:ipxe,BC_EFI,"Ferry",${chain},${t}`,
  );
  if (o.dnsmasqTftpRoot !== undefined) {
    lines.push(
      '',
      `# dnsmasq serves TFTP itself: put ${bios}, ${efi} and ${chain} (\`ferry pxe ipxe-chain\`) in ${o.dnsmasqTftpRoot}.`,
      'enable-tftp',
      `tftp-root=${o.dnsmasqTftpRoot}`,
    );
  } else {
    lines.push('', `# TFTP is Ferry's own: ferry serve --tftp ${t}:69 --tftp-root DIR (serves ${chain} itself).`);
  }
  return lines.join('\n') + '\n';
}
