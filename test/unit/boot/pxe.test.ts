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
  it('full DHCP on a segment of its own (--dhcp-range): addresses and the boot file by architecture', () => {
    const c = renderDnsmasqConfig({ interface: 'fxh1', subnet: '10.7.8.1/24', serverUrl: 'http://10.7.8.1:8080', tftpServer: '10.7.8.1', dhcpRange: { start: '10.7.8.100', end: '10.7.8.150' } });
    expect(c).toMatch(/^dhcp-range=10\.7\.8\.100,10\.7\.8\.150,255\.255\.255\.0,1h$/m);
    expect(c).not.toMatch(/proxy/);
    expect(c).not.toMatch(/^pxe-service=/m);
    expect(c).toMatch(/^dhcp-boot=tag:!ipxe,tag:!efi,undionly\.kpxe,,10\.7\.8\.1$/m);
    expect(c).toMatch(/^dhcp-boot=tag:!ipxe,tag:efi,ipxe\.efi,,10\.7\.8\.1$/m);
    expect(c).toMatch(/^dhcp-boot=tag:ipxe,boot\.ipxe,,10\.7\.8\.1$/m);
  });
  it('a DHCP range outside the subnet or backwards is refused', () => {
    for (const [range, re] of [
      [{ start: '10.7.8.100', end: '10.7.9.150' }, /10\.7\.9\.150 is not in the subnet 10\.7\.8\.0\/24/],
      [{ start: '10.7.8.150', end: '10.7.8.100' }, /ends before it starts/],
      [{ start: 'a', end: '10.7.8.100' }, /not a range of two IPv4 addresses/],
    ] as const) {
      try {
        renderDnsmasqConfig({ interface: 'fxh1', subnet: '10.7.8.1/24', serverUrl: 'http://10.7.8.1:8080', tftpServer: '10.7.8.1', dhcpRange: range });
        expect.unreachable();
      } catch (e: any) {
        expect(e.code).toBe('FERRY_E_PXE_CONFIG');
        expect(e.problems.map((p: any) => p.path)).toEqual(['dhcpRange']);
        expect(e.problems[0].message).toMatch(re);
      }
    }
  });
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
