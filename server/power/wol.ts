/**
 * wol: Wake-on-LAN, power-on only. A magic packet (6 bytes 0xff, then the MAC 16 times) to UDP
 * port 9 of a broadcast address (default 255.255.255.255), once for each of the node's MACs. The
 * machine does not answer, so the state is unknown.
 */
import { createSocket } from 'node:dgram';
import { normalizeMac } from '../../common/mac.js';
import { parseHostPort } from './address.js';
import { powerFailed, unsupported } from './errors.js';
import type { PowerDriver, PowerTarget } from './types.js';

export const WOL_PORT = 9;

export function magicPacket(mac: string): Buffer {
  const bytes = Buffer.from(normalizeMac(mac).split(':').map((h) => parseInt(h, 16)));
  const p = Buffer.alloc(6 + 16 * 6, 0xff);
  for (let i = 0; i < 16; i++) bytes.copy(p, 6 + i * 6);
  return p;
}

export function wolDestination(address: string): { host: string; port: number } {
  const a = parseHostPort('wol', address || '255.255.255.255');
  return { host: a.host, port: a.port ?? WOL_PORT };
}

async function send(t: PowerTarget): Promise<void> {
  const { host, port } = wolDestination(t.address);
  const sock = createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(0, () => {
        sock.setBroadcast(true);
        resolve();
      });
    });
    for (const mac of t.macs) {
      await new Promise<void>((resolve, reject) => sock.send(magicPacket(mac), port, host, (e) => (e ? reject(e) : resolve())));
    }
  } catch (e) {
    throw powerFailed(t, 'on', (e as Error).message, e);
  } finally {
    sock.close();
  }
}

export const wol: PowerDriver = {
  kind: 'wol',
  can: { on: true, off: false, cycle: false, status: false, pxeOnce: false },
  async on(t) {
    if (!t.macs.length) throw powerFailed(t, 'on', 'the node has no MAC to wake');
    await send(t);
    return { state: 'unknown' };
  },
  off: async (t) => {
    throw unsupported(t, 'power off', 'Wake-on-LAN can only wake a machine');
  },
  cycle: async (t) => {
    throw unsupported(t, 'power-cycle', 'Wake-on-LAN can only wake a machine');
  },
  status: async () => ({ state: 'unknown' }),
  pxeOnce: async (t) => {
    throw unsupported(t, 'set a one-time network boot', 'Wake-on-LAN can only wake a machine');
  },
};
