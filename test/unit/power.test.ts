/** Power drivers' pure parts: address rules, the ipmitool plan, parsers, the magic packet. */
import { describe, expect, it } from 'vitest';
import { parseHostPort } from '../../server/power/address.js';
import { checkPowerSettings, powerAction, powerDriver, powerForInstall } from '../../server/power/index.js';
import { ipmiCall, parseIpmiStatus } from '../../server/power/ipmi.js';
import { qmpState } from '../../server/power/qemu.js';
import { redfishBase, redfishState } from '../../server/power/redfish.js';
import { magicPacket, wolDestination } from '../../server/power/wol.js';

const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
};

describe('power addresses', () => {
  it('reads HOST, HOST:PORT and [IPv6]:PORT', () => {
    expect(parseHostPort('ipmi', 'bmc1.rack')).toEqual({ host: 'bmc1.rack' });
    expect(parseHostPort('ipmi', '10.1.2.3:6230')).toEqual({ host: '10.1.2.3', port: 6230 });
    expect(parseHostPort('ipmi', '[fd00::7]:623')).toEqual({ host: 'fd00::7', port: 623 });
  });
  it('refuses bad hosts and ports with FERRY_E_POWER_ADDRESS', () => {
    for (const a of ['bmc1:0', 'bmc1:70000', 'bmc1:x', 'bad host', '-x', 'a;b']) expect(code(() => parseHostPort('ipmi', a)), a).toBe('FERRY_E_POWER_ADDRESS');
  });
  it('checks each driver\'s address form when it is set', () => {
    expect(code(() => checkPowerSettings('ipmi', ''))).toBe('FERRY_E_POWER_ADDRESS');
    expect(code(() => checkPowerSettings('qemu', 'qmp.sock'))).toBe('FERRY_E_POWER_ADDRESS');
    expect(code(() => checkPowerSettings('redfish', 'https://root:pw@bmc'))).toBe('FERRY_E_POWER_ADDRESS');
    expect(code(() => checkPowerSettings('redfish', 'https://bmc/other/path'))).toBe('FERRY_E_POWER_ADDRESS');
    expect(code(() => checkPowerSettings('amt', 'x'))).toBe('FERRY_E_BAD_VALUE');
    expect(() => checkPowerSettings('qemu', '/run/qmp.sock')).not.toThrow();
    expect(() => checkPowerSettings('wol', '')).not.toThrow();
    expect(() => checkPowerSettings('manual', '')).not.toThrow();
    expect(() => checkPowerSettings('redfish', 'bmc.example:8443')).not.toThrow();
  });
});

describe('ipmi plan', () => {
  const t = { node: 'n1', driver: 'ipmi' as const, address: '10.0.0.5:6230', user: 'admin', password: 'p4ss word!', macs: [] };
  it('runs ipmitool lanplus with cipher suite 3 and the password in the environment only', () => {
    const c = ipmiCall(t, ['chassis', 'power', 'status']);
    expect(c.argv).toEqual(['ipmitool', '-I', 'lanplus', '-C', '3', '-H', '10.0.0.5', '-p', '6230', '-U', 'admin', '-E', '-N', '2', '-R', '3', 'chassis', 'power', 'status']);
    expect(c.argv.join(' ')).not.toContain('p4ss');
    expect(c.env).toEqual({ IPMI_PASSWORD: 'p4ss word!' });
  });
  it('reads ipmitool\'s power state', () => {
    expect(parseIpmiStatus('Chassis Power is on\n')).toBe('on');
    expect(parseIpmiStatus('Chassis Power is off\n')).toBe('off');
    expect(parseIpmiStatus('Error: Unable to establish IPMI v2 / RMCP+ session\n')).toBeUndefined();
  });
});

describe('redfish and qemu states', () => {
  it('maps Redfish PowerState and QMP run states', () => {
    expect([redfishState('On'), redfishState('PoweringOn'), redfishState('Off'), redfishState('PoweringOff'), redfishState(undefined)]).toEqual(['on', 'on', 'off', 'off', 'unknown']);
    expect([qmpState('running'), qmpState('paused'), qmpState('prelaunch'), qmpState('shutdown')]).toEqual(['on', 'off', 'off', 'off']);
  });
  it('takes https for a bare host, and a named system from the path', () => {
    expect(redfishBase('bmc7:8443')).toEqual({ origin: 'https://bmc7:8443', system: undefined });
    expect(redfishBase('http://127.0.0.1:8000/redfish/v1/Systems/Self/')).toEqual({ origin: 'http://127.0.0.1:8000', system: '/redfish/v1/Systems/Self' });
  });
});

describe('wol', () => {
  it('builds the magic packet: 6 x 0xff, then the MAC 16 times', () => {
    const p = magicPacket('52-54-00-AB-CD-EF');
    expect(p.length).toBe(102);
    expect(p.subarray(0, 6).toString('hex')).toBe('ffffffffffff');
    for (let i = 0; i < 16; i++) expect(p.subarray(6 + i * 6, 12 + i * 6).toString('hex')).toBe('525400abcdef');
  });
  it('sends to 255.255.255.255:9 unless told', () => {
    expect(wolDestination('')).toEqual({ host: '255.255.255.255', port: 9 });
    expect(wolDestination('10.9.8.255:7')).toEqual({ host: '10.9.8.255', port: 7 });
  });
  it('cannot power off, cycle or tell the state', async () => {
    const t = { node: 'n2', driver: 'wol' as const, address: '', macs: ['52:54:00:00:00:01'] };
    await expect(powerAction(t, 'off')).rejects.toMatchObject({ code: 'FERRY_E_POWER_UNSUPPORTED' });
    await expect(powerAction(t, 'cycle')).rejects.toMatchObject({ code: 'FERRY_E_POWER_UNSUPPORTED' });
    expect(await powerAction(t, 'status')).toEqual({ state: 'unknown' });
  });
});

describe('manual', () => {
  it('asks the operator, for an install too', async () => {
    const t = { node: 'old7', driver: 'manual' as const, address: 'rack 3, U12', macs: [] };
    expect(await powerAction(t, 'on')).toEqual({ state: 'unknown', message: 'manual power: power on node old7 (rack 3, U12) by hand' });
    expect(await powerForInstall(t)).toMatchObject({ action: 'cycle', pxeOnce: false, message: expect.stringContaining('power-cycle') });
    expect(powerDriver('manual').can.status).toBe(false);
  });
});
