/** The power drivers, by kind, and what `ferry power` and `ferry deploy --power` do with them. */
import { isAbsolute } from 'node:path';
import { FerryError, toFerryError } from '../../common/errors.js';
import { parseHostPort } from './address.js';
import { badAddress } from './errors.js';
import { ipmi } from './ipmi.js';
import { manual } from './manual.js';
import { qemu } from './qemu.js';
import { redfish, redfishBase } from './redfish.js';
import { POWER_DRIVERS, type PowerAction, type PowerDriver, type PowerDriverKind, type PowerResult, type PowerTarget } from './types.js';
import { wol, wolDestination } from './wol.js';

export * from './types.js';

const DRIVERS: Record<PowerDriverKind, PowerDriver> = { ipmi, redfish, qemu, wol, manual };

export function powerDriver(kind: string): PowerDriver {
  const d = DRIVERS[kind as PowerDriverKind];
  if (!d) throw new FerryError('FERRY_E_BAD_VALUE', `power driver "${kind}" is not one of ${POWER_DRIVERS.join(', ')}`, { details: { driver: kind, allowed: POWER_DRIVERS }, hint: `use one of ${POWER_DRIVERS.join(', ')}` });
  return d;
}

/** Check a driver and its address when they are set, not when the rack is being powered. */
export function checkPowerSettings(kind: string, address: string | undefined): void {
  powerDriver(kind);
  const a = address ?? '';
  switch (kind) {
    case 'ipmi':
      if (!a) throw badAddress(kind, a, 'the BMC\'s HOST[:PORT] is needed');
      parseHostPort(kind, a);
      break;
    case 'redfish':
      if (!a) throw badAddress(kind, a, 'the BMC\'s [https://]HOST[:PORT] is needed');
      redfishBase(a);
      break;
    case 'qemu':
      if (!isAbsolute(a)) throw badAddress(kind, a, 'give the absolute path of the guest\'s QMP unix socket');
      break;
    case 'wol':
      wolDestination(a);
      break;
  }
}

/** One action on one machine. */
export function powerAction(t: PowerTarget, action: PowerAction): Promise<PowerResult> {
  const d = powerDriver(t.driver);
  return d[action](t);
}

export interface InstallPowerResult extends PowerResult {
  /** Whether a one-time network boot was set first. */
  pxeOnce: boolean;
  /** The action that started the machine: on (it was off, or the driver can only wake), or cycle. */
  action: 'on' | 'cycle';
}

/**
 * Start an install: a one-time network boot where the driver can set one, then power on a machine
 * that is off and power-cycle one that is on (a driver that cannot tell is cycled when it can, else
 * woken).
 */
export async function powerForInstall(t: PowerTarget): Promise<InstallPowerResult> {
  const d = powerDriver(t.driver);
  if (d.can.pxeOnce) await d.pxeOnce(t);
  const state = d.can.status ? (await d.status(t)).state : 'unknown';
  const action: 'on' | 'cycle' = state === 'off' || !d.can.cycle ? 'on' : 'cycle';
  const r = await d[action](t);
  return { ...r, pxeOnce: d.can.pxeOnce, action };
}

/** An error as a result row, for collated output over many nodes. */
export function powerError(e: unknown): { code: string; message: string; hint?: string } {
  const f = toFerryError(e, 'FERRY_E_POWER_FAILED');
  return { code: f.code, message: f.message, hint: f.hint };
}
