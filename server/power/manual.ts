/**
 * manual: a machine someone powers by hand. Every action succeeds with the instruction for the
 * operator; the state is unknown. Recorded like the others, so the audit log shows who was asked.
 */
import type { PowerDriver, PowerResult, PowerTarget } from './types.js';

const ask = (t: PowerTarget, what: string): PowerResult => ({ state: 'unknown', message: `manual power: ${what} node ${t.node}${t.address ? ` (${t.address})` : ''} by hand` });

export const manual: PowerDriver = {
  kind: 'manual',
  can: { on: true, off: true, cycle: true, status: false, pxeOnce: false },
  on: async (t) => ask(t, 'power on'),
  off: async (t) => ask(t, 'power off'),
  cycle: async (t) => ask(t, 'power-cycle (reset)'),
  status: async () => ({ state: 'unknown' }),
  pxeOnce: async () => {
    /* nothing to set: the operator chooses the network boot in the boot menu */
  },
};
