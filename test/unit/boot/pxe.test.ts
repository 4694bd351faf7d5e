import { describe, expect, it } from 'vitest';
import { interfaceIpv4 } from '../../../cli/pxe.js';
import { tftpArgs } from '../../../cli/serve.js';
import { ipv4Network, renderDnsmasqConfig } from '../../../server/boot/dnsmasq.js';
import { expectGolden } from './golden.js';

describe('dnsmasq configuration', () => {
  it('proxy DHCP chaining PXE to iPXE to the server, TFTP by Ferry', () =>
    expectGolden('dnsmasq-proxy.conf', renderDnsmasqConfig({ interface: 'eno1', subnet: '192.0.2.10/24', serverUrl: 'http://192.0.2.10:8080/', tftpServer: '192.0.2.10' })));
  it('with dnsmasq serving TFTP itself', () =>
    expectGolden(
      'dnsmasq-proxy-tftp.conf',
      renderDnsmasqConfig({ interface: 'br0', subnet: '10.1.0.0/16', serverUrl: 'https://ferry.example.com', tftpServer: '10.1.0.5', dnsmasqTftpRoot: '/srv/tftp' }),
    ));
  it('reports every bad option at once', () => {
    try {
      renderDnsmasqConfig({ interface: 'eth 0', subnet: '300.1.1.1/24', serverUrl: 'ftp://x', tftpServer: 'host', biosLoader: 'pxelinux', dnsmasqTftpRoot: 'relative' });
      expect.unreachable();
    } catch (e: any) {
      expect(e.code).toBe('FERRY_E_PXE_CONFIG');
      expect(e.problems.map((p: any) => p.path)).toEqual(['interface', 'subnet', 'tftpServer', 'serverUrl', 'biosLoader', 'dnsmasqTftpRoot']);
    }
  });
  it('computes network addresses', () => {
    expect(ipv4Network('192.0.2.77', 24)).toBe('192.0.2.0');
    expect(ipv4Network('10.1.200.3', 12)).toBe('10.0.0.0');
    expect(ipv4Network('10.1.200.3', 32)).toBe('10.1.200.3');
    expect(ipv4Network('10.1.200.3', 0)).toBe('0.0.0.0');
  });
});

describe('ferry pxe and ferry serve options', () => {
  const ifaces = {
    lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' }],
    eno1: [
      { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '52:54:00:00:00:01', internal: false, cidr: 'fe80::1/64', scopeid: 2 },
      { address: '192.0.2.10', netmask: '255.255.255.0', family: 'IPv4', mac: '52:54:00:00:00:01', internal: false, cidr: '192.0.2.10/24' },
    ],
    wg0: [{ address: 'fd00::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '00:00:00:00:00:00', internal: false, cidr: 'fd00::1/64', scopeid: 0 }],
  } as any;
  it('finds the address and subnet of an interface', () => {
    expect(interfaceIpv4('eno1', ifaces)).toEqual({ address: '192.0.2.10', subnet: '192.0.2.10/24' });
  });
  it('names the candidates when the interface is missing or has no IPv4', () => {
    expect(() => interfaceIpv4('eth9', ifaces)).toThrow(expect.objectContaining({ code: 'FERRY_E_PXE_INTERFACE', message: expect.stringMatching(/does not exist/) }));
    try {
      interfaceIpv4('wg0', ifaces);
      expect.unreachable();
    } catch (e: any) {
      expect(e.message).toMatch(/has no IPv4 address/);
      expect(e.details.interfaces).toEqual(['lo (127.0.0.1/8)', 'eno1 (192.0.2.10/24)']);
    }
  });
  it('reads --tftp with and without an address', () => {
    expect(tftpArgs(['--tftp'])).toEqual(['--tftp']);
    expect(tftpArgs(['--tftp', '--data', 'd'])).toEqual(['--tftp', '--data', 'd']);
    expect(tftpArgs(['--tftp', '192.0.2.1:69', '--data', 'd'])).toEqual(['--tftp', '--tftp-listen', '192.0.2.1:69', '--data', 'd']);
    expect(tftpArgs(['--tftp=[::1]:6969'])).toEqual(['--tftp', '--tftp-listen', '[::1]:6969']);
  });
});
