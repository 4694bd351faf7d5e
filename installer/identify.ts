/** Who am I: the boot NIC's MAC from BOOTIF, else the first real network interface. */
import * as fs from 'node:fs';
import { parseMac } from '../common/mac.js';

/** BOOTIF is `01-52-54-00-12-34-56` (ARP type 1, then the MAC); a plain MAC is accepted too. */
export function macFromBootif(v: string): string | undefined {
  return parseMac(v);
}

/** Kernel command line → key=value map (later keys win; bare words map to ""). */
export function parseCmdline(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /(\S+?)(?:=("[^"]*"|\S*))?(?:\s+|$)/g;
  for (const m of text.trim().matchAll(re)) {
    if (!m[1]) continue;
    let v = m[2] ?? '';
    if (v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    out[m[1]] = v;
  }
  return out;
}

export interface Iface {
  name: string;
  mac: string;
  /** Physical (has a device) rather than virtual (bridge, veth, lo). */
  physical: boolean;
  up: boolean;
}

export function readInterfaces(sys = '/sys/class/net'): Iface[] {
  const out: Iface[] = [];
  let names: string[] = [];
  try {
    names = fs.readdirSync(sys);
  } catch {
    return out;
  }
  for (const name of names.sort()) {
    try {
      const mac = fs.readFileSync(`${sys}/${name}/address`, 'utf8').trim();
      const physical = fs.existsSync(`${sys}/${name}/device`);
      const up = fs.readFileSync(`${sys}/${name}/operstate`, 'utf8').trim() === 'up';
      out.push({ name, mac, physical, up });
    } catch {
      /* interface vanished while reading */
    }
  }
  return out;
}

/** Prefer a physical interface that is up, then any physical one, then anything but loopback. */
export function pickMac(ifaces: Iface[]): string | undefined {
  const real = ifaces.flatMap((i) => {
    const mac = parseMac(i.mac);
    return mac && mac !== '00:00:00:00:00:00' ? [{ ...i, mac }] : [];
  });
  return (real.find((i) => i.physical && i.up) ?? real.find((i) => i.physical) ?? real.find((i) => i.up) ?? real[0])?.mac;
}
