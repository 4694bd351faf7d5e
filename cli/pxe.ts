/**
 * `ferry pxe`: what a site's network needs to boot machines into Ferry.
 *   ferry pxe dnsmasq-config --interface IF [--server URL] [--tftp-server ADDR] [--dnsmasq-tftp DIR] [--subnet NET/LEN] [--dhcp-range START,END]
 *   ferry pxe ipxe-chain [--server URL]
 *   ferry pxe pxelinux --mac MAC [--server URL --token TOKEN]
 */
import { networkInterfaces } from 'node:os';
import { FerryError } from '../common/errors.js';
import { renderDnsmasqConfig } from '../server/boot/dnsmasq.js';
import { pxelinuxConfigPath, renderIpxeChain, renderPxelinuxInstall, renderPxelinuxLocal } from '../server/boot/ipxe.js';
import { loopbackUrlWarning } from '../server/public-url.js';
import { parseSubcommand, serverUrl, usageError } from '../common/cli.js';

const USAGE = [
  'ferry pxe dnsmasq-config --interface IF [--server URL] [--tftp-server ADDR] [--dnsmasq-tftp DIR] [--subnet A.B.C.D/LEN] [--dhcp-range START,END]',
  'ferry pxe ipxe-chain [--server URL]',
  'ferry pxe pxelinux --mac MAC [--server URL --token TOKEN]   (local boot without --token)',
].join('\n');

/** The server URL machines use: --server, else the running server's public URL recorded in DATA/server.json. */
function machineServerUrl(values: Record<string, unknown>): string {
  return serverUrl(values, {
    public: true,
    missing: (f) => usageError(`give --server URL (the address machines use to reach \`ferry serve\`); no running server is recorded in ${f}`, USAGE),
  });
}

/** The IPv4 address and subnet of an interface on this machine. */
export function interfaceIpv4(name: string, ifaces = networkInterfaces()): { address: string; subnet: string } {
  const list = ifaces[name];
  const v4 = list?.find((a) => a.family === 'IPv4' && !a.internal) ?? list?.find((a) => a.family === 'IPv4');
  if (!v4 || !v4.cidr) {
    const have = Object.entries(ifaces)
      .filter(([, as]) => as?.some((a) => a.family === 'IPv4'))
      .map(([n, as]) => `${n} (${as!.filter((a) => a.family === 'IPv4').map((a) => a.cidr).join(', ')})`);
    throw new FerryError('FERRY_E_PXE_INTERFACE', `the interface "${name}" ${list ? 'has no IPv4 address' : 'does not exist on this machine'}`, {
      details: { interface: name, interfaces: have },
      hint: `give the interface facing the machines to boot (${have.join('; ') || 'none has an IPv4 address'}), or --subnet and --tftp-server`,
    });
  }
  return { address: v4.address, subnet: v4.cidr };
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseSubcommand(
    argv,
    {
      interface: { type: 'string' },
      server: { type: 'string' },
      'tftp-server': { type: 'string' },
      'dnsmasq-tftp': { type: 'string' },
      subnet: { type: 'string' },
      'dhcp-range': { type: 'string' },
      mac: { type: 'string' },
      token: { type: 'string' },
    },
    USAGE,
  );
  if (typeof parsed === 'number') return parsed;
  const { sub, values, positionals } = parsed;
  if (positionals.length) throw usageError(`unexpected argument "${positionals[0]}"`, USAGE);
  switch (sub) {
    case 'dnsmasq-config': {
      if (!values.interface) throw usageError('give --interface IF: the interface facing the machines to boot', USAGE);
      let subnet = values.subnet as string | undefined;
      let tftp = values['tftp-server'] as string | undefined;
      if (!subnet || !tftp) {
        const ip = interfaceIpv4(values.interface);
        subnet ??= ip.subnet;
        tftp ??= ip.address;
      }
      // Full DHCP (dnsmasq hands out the addresses) instead of proxy-DHCP beside the site's server.
      const range = values['dhcp-range'] as string | undefined;
      let dhcpRange: { start: string; end: string } | undefined;
      if (range !== undefined) {
        const m = /^([^,]+),([^,]+)$/.exec(range);
        if (!m) throw usageError(`--dhcp-range "${range}" is not START,END (two addresses, e.g. 192.0.2.100,192.0.2.199)`, USAGE);
        dhcpRange = { start: m[1].trim(), end: m[2].trim() };
      }
      const url = machineServerUrl(values);
      const warning = loopbackUrlWarning(url, { name: values.interface, internal: networkInterfaces()[values.interface]?.some((a) => a.internal) ?? values.interface === 'lo' });
      if (warning) process.stderr.write(`ferry: ${warning}\n`);
      process.stdout.write(renderDnsmasqConfig({ interface: values.interface, subnet, tftpServer: tftp, serverUrl: url, dnsmasqTftpRoot: values['dnsmasq-tftp'], dhcpRange }));
      return 0;
    }
    case 'ipxe-chain':
      process.stdout.write(renderIpxeChain(machineServerUrl(values)));
      return 0;
    case 'pxelinux': {
      if (!values.mac) throw usageError('give --mac MAC', USAGE);
      const text = values.token
        ? renderPxelinuxInstall({ serverUrl: machineServerUrl(values), token: values.token, mac: values.mac })
        : renderPxelinuxLocal({ mac: values.mac });
      process.stderr.write(`# TFTP file: ${pxelinuxConfigPath(values.mac)}\n`);
      process.stdout.write(text);
      return 0;
    }
    default:
      throw usageError(`unknown subcommand "${sub}"`, USAGE);
  }
}
