/** The errors every power driver shares. */
import { FerryError } from '../../common/errors.js';
import type { PowerTarget } from './types.js';

export function unsupported(t: PowerTarget, action: string, why: string): FerryError {
  return new FerryError('FERRY_E_POWER_UNSUPPORTED', `node ${t.node}: the ${t.driver} driver cannot ${action}: ${why}`, {
    details: { node: t.node, driver: t.driver, action },
    hint: t.driver === 'wol' || t.driver === 'manual' ? `give the node a driver that can (ferry node set ${t.node} --power ipmi|redfish|qemu …), or do it by hand` : 'do it by hand, or use a driver that can',
  });
}

export function powerFailed(t: PowerTarget, action: string, why: string, cause?: unknown): FerryError {
  return new FerryError('FERRY_E_POWER_FAILED', `node ${t.node}: ${t.driver} ${action} at ${t.address} failed: ${why}`, {
    details: { node: t.node, driver: t.driver, action, address: t.address },
    hint: 'check the power address, user and password (ferry node set NODE --power-address … --power-user … --power-password-file …) and that the BMC answers from this host',
    cause,
  });
}

export function badAddress(driver: string, address: string, rule: string): FerryError {
  return new FerryError('FERRY_E_POWER_ADDRESS', `power address "${address}" is not valid for the ${driver} driver: ${rule}`, {
    details: { driver, address },
    hint: 'ipmi: HOST[:PORT]; redfish: [https://]HOST[:PORT]; qemu: the path of the QMP unix socket; wol: a broadcast ADDRESS[:PORT]',
  });
}
