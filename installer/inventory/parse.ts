/**
 * The inventory parsers: dmidecode's text, `lsblk -J`, /sys/class/net (as read by collect.ts) and
 * /proc/cpuinfo. Pure functions of their text, unit-tested on fixtures of several machine kinds
 * (test/fixtures/inventory/).
 */
import { dmiValue, type InventoryDisk, type InventoryNic } from '../../common/inventory.js';

export interface DmiRecord {
  type: number;
  title: string;
  fields: Record<string, string>;
}

/** `dmidecode` output: "Handle 0x…, DMI type N, …" records of "\tKey: Value" lines. */
export function parseDmidecode(text: string): DmiRecord[] {
  const out: DmiRecord[] = [];
  let cur: DmiRecord | undefined;
  let expectTitle = false;
  for (const line of text.split('\n')) {
    const h = /^Handle 0x[0-9A-Fa-f]+, DMI type (\d+),/.exec(line);
    if (h) {
      cur = { type: Number(h[1]), title: '', fields: {} };
      out.push(cur);
      expectTitle = true;
      continue;
    }
    if (!cur) continue;
    if (expectTitle && line.trim() && !line.startsWith('\t')) {
      cur.title = line.trim();
      expectTitle = false;
      continue;
    }
    const f = /^\t([^\t:][^:]*):\s?(.*)$/.exec(line);
    if (f) cur.fields[f[1].trim()] = f[2].trim();
  }
  return out;
}

/** Values firmware writers leave in place of data. */
const clean = dmiValue;

const UNITS: Record<string, number> = { B: 1, kB: 1024, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

export function dmiSummary(recs: DmiRecord[]) {
  const bios = recs.find((r) => r.type === 0)?.fields ?? {};
  const sys = recs.find((r) => r.type === 1)?.fields ?? {};
  let memory = 0;
  for (const r of recs.filter((x) => x.type === 17)) {
    const m = /^(\d+)\s*(B|kB|KB|MB|GB|TB)$/.exec(r.fields.Size ?? '');
    if (m) memory += Number(m[1]) * UNITS[m[2]];
  }
  return {
    system: { vendor: clean(sys.Manufacturer), product: clean(sys['Product Name']), serial: clean(sys['Serial Number']), uuid: clean(sys.UUID)?.toLowerCase() },
    firmware: { vendor: clean(bios.Vendor), version: clean(bios.Version), date: clean(bios['Release Date']), uefi: /UEFI is supported/.test(Object.keys(bios).join('\n')) || undefined },
    memoryBytes: memory,
  };
}

/** /proc/cpuinfo (x86): model, sockets (physical ids), cores (per socket × sockets), threads. */
export function parseCpuinfo(text: string): { model?: string; sockets: number; cores: number; threads: number } {
  const blocks = text.split(/\n\s*\n/).filter((b) => /^processor\s*:/m.test(b));
  const field = (b: string, k: string) => new RegExp(`^${k}\\s*:\\s*(.*)$`, 'm').exec(b)?.[1]?.trim();
  const sockets = new Set<string>();
  const cores = new Set<string>();
  for (const b of blocks) {
    const phys = field(b, 'physical id') ?? '0';
    sockets.add(phys);
    cores.add(`${phys}/${field(b, 'core id') ?? field(b, 'processor')}`);
  }
  return { model: blocks.length ? field(blocks[0], 'model name') : undefined, sockets: sockets.size, cores: cores.size, threads: blocks.length };
}

interface LsblkDevice {
  name: string;
  path?: string;
  size: number | string;
  model?: string | null;
  serial?: string | null;
  wwn?: string | null;
  rota?: boolean | string;
  tran?: string | null;
  type: string;
}

/** `lsblk -J -b -d -o NAME,PATH,SIZE,MODEL,SERIAL,WWN,ROTA,TRAN,TYPE`: whole disks, not zram, loop or CD-ROMs. */
export function parseLsblk(json: string, byPath: Record<string, string> = {}, sysSerial: Record<string, string> = {}): InventoryDisk[] {
  const devs = (JSON.parse(json) as { blockdevices?: LsblkDevice[] }).blockdevices ?? [];
  return devs
    .filter((d) => d.type === 'disk' && !/^(zram|loop|ram|fd)/.test(d.name) && Number(d.size) > 0)
    .map((d) => {
      const path = d.path ?? `/dev/${d.name}`;
      const s = (v: string | null | undefined) => (v ? v.trim() || undefined : undefined);
      return { path, sizeBytes: Number(d.size), model: s(d.model), serial: s(d.serial) ?? s(sysSerial[path]), wwn: s(d.wwn), rotational: d.rota === true || d.rota === '1', transport: s(d.tran), byPath: byPath[path] };
    });
}

/** One interface's files under /sys/class/net/IF, as collect.ts reads them. */
export interface SysNet {
  address?: string;
  operstate?: string;
  speed?: string;
  type?: string;
  /** The basename of the device/driver link; absent for virtual interfaces. */
  driver?: string;
}

/** Physical Ethernet interfaces (ARPHRD_ETHER with a driver), sorted by name. */
export function parseSysNet(ifaces: Record<string, SysNet>): InventoryNic[] {
  return Object.entries(ifaces)
    .filter(([, f]) => f.type?.trim() === '1' && f.driver && f.address)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, f]) => {
      const speed = Number(f.speed?.trim());
      const state = f.operstate?.trim();
      return { name, mac: f.address!.trim().toLowerCase(), driver: f.driver, speedMbps: Number.isInteger(speed) && speed > 0 ? speed : undefined, link: state === 'up' ? 'up' : state === 'down' ? 'down' : 'unknown' };
    });
}

/** MemTotal of /proc/meminfo, in bytes (the fallback when DMI has no memory devices). */
export function parseMeminfo(text: string): number {
  const m = /^MemTotal:\s+(\d+) kB$/m.exec(text);
  return m ? Number(m[1]) * 1024 : 0;
}

export interface InventorySources {
  dmidecode: string;
  cpuinfo: string;
  lsblk: string;
  sysnet: Record<string, SysNet>;
  meminfo?: string;
  /** /sys/firmware/efi exists: the machine booted UEFI. */
  efi: boolean;
  /** /dev/disk/by-path links: device path → by-path name. */
  byPath?: Record<string, string>;
  /**
   * Disk serials from sysfs (/sys/block/NAME/serial, NAME/device/serial): device path → serial. lsblk
   * reads them from the udev database, which the boot environment does not have (a virtio disk's
   * serial was missing there), so these fill in what lsblk leaves empty.
   */
  sysSerial?: Record<string, string>;
}

/** The whole inventory from what collect.ts read. */
export function buildInventory(s: InventorySources): import('../../common/inventory.js').Inventory {
  const dmi = dmiSummary(parseDmidecode(s.dmidecode));
  return {
    system: dmi.system,
    firmware: { vendor: dmi.firmware.vendor, version: dmi.firmware.version, date: dmi.firmware.date, mode: s.efi ? 'uefi' : 'bios' },
    cpu: parseCpuinfo(s.cpuinfo),
    memoryBytes: dmi.memoryBytes || parseMeminfo(s.meminfo ?? ''),
    disks: parseLsblk(s.lsblk, s.byPath, s.sysSerial),
    nics: parseSysNet(s.sysnet),
  };
}
