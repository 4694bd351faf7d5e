/**
 * The redfish power driver (undici) against the Redfish test double of test/harness/redfish.ts on
 * loopback (a documented test double: no real BMC is reachable here).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { powerAction, powerForInstall, type PowerTarget } from '../../../server/power/index.js';
import { startRedfishDouble, type RedfishDouble } from '../../harness/redfish.js';

describe('redfish power driver against a Redfish test double on loopback', () => {
  let bmc: RedfishDouble;
  let t: PowerTarget;
  beforeAll(async () => {
    bmc = await startRedfishDouble({ user: 'root', password: 'calvin-9' });
    t = { node: 'r1', driver: 'redfish', address: bmc.url, user: 'root', password: 'calvin-9', macs: [] };
  });
  afterAll(() => bmc?.close());

  it('status, on, cycle and off through Systems and ComputerSystem.Reset', async () => {
    expect((await powerAction(t, 'status')).state).toBe('off');
    expect((await powerAction(t, 'on')).state).toBe('on');
    expect((await powerAction(t, 'cycle')).state).toBe('on');
    expect(bmc.state.boots).toEqual(['Hdd', 'Hdd']);
    expect((await powerAction(t, 'off')).state).toBe('off');
    // An off machine is powered on by cycle, not left off.
    expect((await powerAction(t, 'cycle')).state).toBe('on');
    expect(bmc.state.boots).toHaveLength(3);
    expect(bmc.state.requests).toContain('POST /redfish/v1/Systems/1/Actions/ComputerSystem.Reset');
  });

  it('install: a one-time Pxe override used by the next boot only', async () => {
    const r = await powerForInstall(t);
    expect(r).toMatchObject({ pxeOnce: true, action: 'cycle', state: 'on' });
    expect(bmc.state.boots.at(-1)).toBe('Pxe');
    expect(bmc.state.override).toEqual({ enabled: 'Disabled', target: 'None' });
    await powerAction(t, 'cycle');
    expect(bmc.state.boots.at(-1)).toBe('Hdd');
  });

  it('a system named in the address is used without the collection', async () => {
    const before = bmc.state.requests.length;
    expect((await powerAction({ ...t, address: `${bmc.url}/redfish/v1/Systems/1` }, 'status')).state).toBe('on');
    expect(bmc.state.requests.slice(before)).toEqual(['GET /redfish/v1/Systems/1']);
  });

  it('a refused password and an unknown system are FERRY_E_POWER_FAILED with the reason', async () => {
    const e = await powerAction({ ...t, password: 'nope' }, 'status').catch((x) => x);
    expect(e.code).toBe('FERRY_E_POWER_FAILED');
    expect(e.message).toContain('HTTP 401');
    const gone = await powerAction({ ...t, address: `${bmc.url}/redfish/v1/Systems/9` }, 'on').catch((x) => x);
    expect(gone.code).toBe('FERRY_E_POWER_FAILED');
    expect(gone.message).toContain('HTTP 404');
  });
});
