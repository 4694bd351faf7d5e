/**
 * A machine's hardware inventory (issue 18), as the installer collects it and the server stores
 * it: the node's `hw.*` properties, replaced as a set at each report. Pure: no I/O.
 */
export interface InventoryDisk {
  path: string;
  sizeBytes: number;
  model?: string;
  serial?: string;
  wwn?: string;
  rotational: boolean;
  transport?: string;
  byPath?: string;
}

export interface InventoryNic {
  name: string;
  mac: string;
  driver?: string;
  /** Mb/s, when the link reports one. */
  speedMbps?: number;
  link: 'up' | 'down' | 'unknown';
}

export interface Inventory {
  system: { vendor?: string; product?: string; serial?: string; uuid?: string };
  firmware: { vendor?: string; version?: string; date?: string; mode: 'bios' | 'uefi' };
  cpu: { model?: string; sockets: number; cores: number; threads: number };
  memoryBytes: number;
  disks: InventoryDisk[];
  nics: InventoryNic[];
}

/** What firmware fills in when nobody set a value: never stored, never a match. */
const DMI_PLACEHOLDER = /^(|0+|Not Specified|Not Present|Not Applicable|To Be Filled By O\.E\.M\.|Default string|System Serial Number|Chassis Serial Number|System Product Name|System manufacturer|0123456789|123456789|None|Unknown|N\/A)$/i;

/** A DMI value, trimmed, or undefined when it is a firmware placeholder. */
export function dmiValue(v: string | undefined): string | undefined {
  return v === undefined || DMI_PLACEHOLDER.test(v.trim()) ? undefined : v.trim();
}

/** The node properties an inventory becomes: hw.system.vendor, hw.disk.0.serial, … */
export function inventoryProperties(inv: Inventory): Record<string, string> {
  const p: Record<string, string> = {};
  const put = (k: string, v: string | number | boolean | undefined) => {
    if (v !== undefined && v !== '') p[`hw.${k}`] = String(v);
  };
  put('system.vendor', inv.system.vendor);
  put('system.product', inv.system.product);
  put('system.serial', inv.system.serial);
  put('system.uuid', inv.system.uuid);
  put('firmware.vendor', inv.firmware.vendor);
  put('firmware.version', inv.firmware.version);
  put('firmware.date', inv.firmware.date);
  put('firmware.mode', inv.firmware.mode);
  put('cpu.model', inv.cpu.model);
  put('cpu.sockets', inv.cpu.sockets);
  put('cpu.cores', inv.cpu.cores);
  put('cpu.threads', inv.cpu.threads);
  put('memory', inv.memoryBytes);
  put('disk.count', inv.disks.length);
  inv.disks.forEach((d, i) => {
    put(`disk.${i}.path`, d.path);
    put(`disk.${i}.size`, d.sizeBytes);
    put(`disk.${i}.model`, d.model);
    put(`disk.${i}.serial`, d.serial);
    put(`disk.${i}.wwn`, d.wwn);
    put(`disk.${i}.rotational`, d.rotational);
    put(`disk.${i}.transport`, d.transport);
    put(`disk.${i}.by-path`, d.byPath);
  });
  put('nic.count', inv.nics.length);
  inv.nics.forEach((n, i) => {
    put(`nic.${i}.name`, n.name);
    put(`nic.${i}.mac`, n.mac);
    put(`nic.${i}.driver`, n.driver);
    put(`nic.${i}.speed`, n.speedMbps);
    put(`nic.${i}.link`, n.link);
  });
  return p;
}

/** `hw.*` properties grouped for display: system, firmware, cpu, memory, disk.N, nic.N. */
export function groupHwProperties(props: Record<string, string>): [string, [string, string][]][] {
  const groups = new Map<string, [string, string][]>();
  for (const [k, v] of Object.entries(props)) {
    if (!k.startsWith('hw.')) continue;
    const parts = k.slice(3).split('.');
    const g = /^\d+$/.test(parts[1] ?? '') ? `${parts[0]} ${parts[1]}` : parts[0];
    const name = /^\d+$/.test(parts[1] ?? '') ? parts.slice(2).join('.') : parts.slice(1).join('.') || parts[0];
    groups.set(g, [...(groups.get(g) ?? []), [name, v]]);
  }
  return [...groups];
}

/** What `node ls --discovered` shows of a report. */
export interface InventorySummary {
  vendor?: string;
  product?: string;
  serial?: string;
  cpus: number;
  memoryBytes: number;
  disks: { path: string; sizeBytes: number; serial?: string }[];
  nics: string[];
  reportedAt: string;
}

/** Pure: the summary of a report. */
export function summarise(inv: Inventory, at: string): InventorySummary {
  return {
    vendor: inv.system.vendor,
    product: inv.system.product,
    serial: inv.system.serial,
    cpus: inv.cpu.threads,
    memoryBytes: inv.memoryBytes,
    disks: inv.disks.map((x) => ({ path: x.path, sizeBytes: x.sizeBytes, ...(x.serial ? { serial: x.serial } : {}) })),
    nics: inv.nics.map((n) => n.mac),
    reportedAt: at,
  };
}

/** A disk as the node's stored hw.* properties describe it (a DiskTarget for the planner). */
export interface StoredDisk {
  path: string;
  size: number;
  /** Not in the inventory: planned with 512-byte sectors; the node plans again with its own. */
  sectorSize: number;
  serial?: string;
  wwn?: string;
  model?: string;
  byPath?: string[];
}

/**
 * The disks of a node's stored `hw.disk.N.*` properties (inventoryProperties, read back), or
 * undefined when the node has reported no inventory. Disks without a path or a size are left out.
 */
export function storedDisks(props: Record<string, string>): StoredDisk[] | undefined {
  const count = props['hw.disk.count'];
  if (count === undefined || !/^\d+$/.test(count)) return undefined;
  const out: StoredDisk[] = [];
  for (let i = 0; i < Number(count); i++) {
    const get = (k: string) => props[`hw.disk.${i}.${k}`] || undefined;
    const path = get('path');
    const size = get('size');
    if (!path || !size || !/^\d+$/.test(size)) continue;
    const byPath = get('by-path');
    out.push({ path, size: Number(size), sectorSize: 512, serial: get('serial'), wwn: get('wwn'), model: get('model'), byPath: byPath ? [byPath] : undefined });
  }
  return out;
}
