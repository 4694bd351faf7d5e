/**
 * The names udev would give a disk under /dev/disk/by-id and /dev/disk/by-path, computed from
 * sysfs alone: the boot environment runs no udev, so those links do not exist there, yet a
 * layout may name its disks by them. Pure functions over a SysfsReader (the live one reads
 * /sys; the unit tier reads recorded trees, test/fixtures/sysfs/), following systemd 252's
 * 60-persistent-storage.rules and path_id for the buses servers and VMs have: virtio-blk,
 * NVMe, SCSI (virtio-scsi, SAS HBAs), ATA behind libata, USB mass storage.
 */

export interface SysfsReader {
  /** The real path of a sysfs link (`/sys/block/vda` → `/sys/devices/…/block/vda`). */
  realpath(path: string): string | undefined;
  /** A file's bytes, undefined when it does not exist. */
  read(path: string): Buffer | undefined;
  /** The names in a directory (empty when it does not exist). */
  list(dir: string): string[];
}

/** An attribute as udev reads it: trailing whitespace and NULs gone; undefined when empty. */
function attr(sys: SysfsReader, path: string): string | undefined {
  const b = sys.read(path);
  if (!b) return undefined;
  const v = b.toString('latin1').replace(/\0+$/g, '').replace(/\s+$/, '').replace(/^\s+/, '');
  return v || undefined;
}

/**
 * udev's spelling in a link name: white space runs become one `_`, and characters outside
 * `0-9A-Za-z#+-.:=@_` become `_` (its replace_whitespace and replace_chars).
 */
export function udevName(s: string): string {
  return s.trim().replace(/\s+/g, '_').replace(/[^0-9A-Za-z#+\-.:=@_]/g, '_');
}

/** The ATA IDENTIFY strings in VPD page 0x89 (SAT): 60 bytes of header, then 512 bytes of IDENTIFY. */
export function ataIdentify(pg89: Buffer): { model?: string; serial?: string } {
  if (pg89.length < 60 + 512) return {};
  const id = pg89.subarray(60, 60 + 512);
  // IDENTIFY strings are 16-bit words with their two bytes swapped.
  const str = (word: number, words: number) => {
    const out = Buffer.alloc(words * 2);
    for (let i = 0; i < words; i++) {
      out[2 * i] = id[2 * (word + i) + 1];
      out[2 * i + 1] = id[2 * (word + i)];
    }
    return out.toString('latin1').replace(/\0/g, '').trim() || undefined;
  };
  return { serial: str(10, 10), model: str(27, 20) };
}

/** SCSI unit serial number, VPD page 0x80: a 4-byte header, then the serial. */
export function vpdSerial(pg80: Buffer | undefined): string | undefined {
  if (!pg80 || pg80.length < 4) return undefined;
  const len = pg80.readUInt16BE(2);
  return pg80.subarray(4, 4 + len).toString('latin1').replace(/\0/g, '').trim() || undefined;
}

/**
 * scsi_id's serial from VPD page 0x83 (device identification), in its preference order: NAA
 * (`3…`), EUI-64 (`2…`), T10 vendor id (`1…`), vendor specific (`0VENDOR MODEL …`, QEMU's
 * scsi-hd). Logical-unit designators only; undefined when the page has none of these.
 */
export function vpdPage83Id(pg83: Buffer | undefined, vendor = '', model = ''): string | undefined {
  if (!pg83 || pg83.length < 4) return undefined;
  const end = Math.min(pg83.length, 4 + pg83.readUInt16BE(2));
  const found: { rank: number; id: string }[] = [];
  for (let o = 4; o + 4 <= end; ) {
    const codeSet = pg83[o] & 0x0f;
    const assoc = (pg83[o + 1] >> 4) & 0x03;
    const type = pg83[o + 1] & 0x0f;
    const len = pg83[o + 3];
    const data = pg83.subarray(o + 4, o + 4 + len);
    o += 4 + len;
    if (assoc !== 0) continue;
    const text = () => data.toString('latin1').replace(/\0/g, '');
    const bin = () => (codeSet === 1 ? data.toString('hex') : text().toLowerCase());
    if (type === 3) found.push({ rank: 0, id: `3${bin()}` });
    else if (type === 2) found.push({ rank: 1, id: `2${bin()}` });
    else if (type === 1) found.push({ rank: 2, id: `1${text()}` });
    else if (type === 0) found.push({ rank: 3, id: `0${vendor.padEnd(8).slice(0, 8)}${model.padEnd(16).slice(0, 16)}${codeSet === 1 ? data.toString('hex') : text()}` });
  }
  return found.sort((a, b) => a.rank - b.rank)[0]?.id;
}

const PCI = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;
const SCSI_DEVICE = /^(\d+):(\d+):(\d+):(\d+)$/;
const USB_INTERFACE = /^\d+-[\d.]+:\d+\.\d+$/;

/** The device directory's parents up to /sys/devices, nearest first. */
function parents(devpath: string): string[] {
  const out: string[] = [];
  let p = devpath;
  while (p.startsWith('/sys/devices/') && p !== '/sys/devices') {
    p = p.slice(0, p.lastIndexOf('/'));
    if (p !== '/sys/devices') out.push(p);
  }
  return out;
}
const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);

/** The SCSI device directory (`H:C:T:L`) a disk hangs from, if any. */
function scsiDevice(devpath: string): string | undefined {
  return parents(devpath).find((p) => SCSI_DEVICE.test(base(p)));
}

/**
 * /dev/disk/by-id names (without the directory) of disk `name` (`vda`, `nvme0n1`, `sda`), as
 * udev makes them: `virtio-SERIAL`; `nvme-MODEL_SERIAL` and `nvme-WWID`; `ata-MODEL_SERIAL`;
 * `scsi-…` and `wwn-0x…`; `usb-VENDOR_MODEL_SERIAL-T:L`. Empty when sysfs says nothing usable.
 */
export function diskByIdNames(name: string, sys: SysfsReader): string[] {
  const blk = `/sys/block/${name}`;
  const devpath = sys.realpath(blk);
  const out: string[] = [];
  const add = (n: string | undefined) => {
    if (n && !out.includes(n)) out.push(n);
  };
  if (/^vd[a-z]+$/.test(name)) {
    const serial = attr(sys, `${blk}/serial`);
    // virtio-blk serials are at most 20 bytes; udev uses them as they are.
    if (serial) add(`virtio-${udevName(serial)}`);
    return out;
  }
  if (/^nvme\d+n\d+$/.test(name)) {
    const serial = attr(sys, `${blk}/device/serial`);
    const model = attr(sys, `${blk}/device/model`);
    if (serial && model) add(`nvme-${udevName(model)}_${udevName(serial)}`);
    const wwid = attr(sys, `${blk}/wwid`) ?? attr(sys, `${blk}/device/wwid`);
    if (wwid) add(`nvme-${udevName(wwid)}`);
    return out;
  }
  if (!/^sd[a-z]+$/.test(name) || !devpath) return out;
  const dev = `${blk}/device`;
  const vendor = attr(sys, `${dev}/vendor`);
  const model = attr(sys, `${dev}/model`);
  const pg80 = vpdSerial(sys.read(`${dev}/vpd_pg80`));
  const wwid = attr(sys, `${dev}/wwid`);
  const usbIf = parents(devpath).find((p) => USB_INTERFACE.test(base(p)));
  if (usbIf) {
    // usb_id: the SCSI vendor and model, the USB device's serial, the SCSI target:lun.
    const usbDev = usbIf.slice(0, usbIf.lastIndexOf('/'));
    const serial = attr(sys, `${usbDev}/serial`);
    const m = SCSI_DEVICE.exec(base(scsiDevice(devpath) ?? ''));
    if (vendor && model) add(`usb-${udevName(vendor)}_${udevName(model)}${serial ? `_${udevName(serial)}` : ''}-${m ? `${m[3]}:${m[4]}` : '0:0'}`);
    return out;
  }
  if (vendor === 'ATA') {
    // libata shows only 16 characters of the model; IDENTIFY (VPD 0x89) has all of it.
    const id = ataIdentify(sys.read(`${dev}/vpd_pg89`) ?? Buffer.alloc(0));
    const m = id.model ?? model;
    const s = id.serial ?? pg80;
    if (m && s) add(`ata-${udevName(m)}_${udevName(s)}`);
  }
  if (vendor !== 'ATA' && vendor && model) {
    // scsi_id: page 0x83's best designator, else `S` and page 0x80's serial.
    const id = vpdPage83Id(sys.read(`${dev}/vpd_pg83`), sys.read(`${dev}/vendor`)?.toString('latin1') ?? vendor, sys.read(`${dev}/model`)?.toString('latin1') ?? model);
    if (id) add(`scsi-${udevName(id)}`);
    else if (pg80) add(`scsi-S${udevName(vendor)}_${udevName(model)}_${udevName(pg80)}`);
  }
  const naa = wwid ? /^naa\.([0-9a-fA-F]+)$/.exec(wwid) : null;
  if (naa) add(`wwn-0x${naa[1].toLowerCase()}`);
  return out;
}

/**
 * The /dev/disk/by-path names of disk `name`, as path_id makes them (the legacy `virtio-pci-…`
 * and ATA `-ata-N` forms included): `pci-0000:00:04.0`, `pci-0000:01:00.0-nvme-1`,
 * `pci-0000:00:1f.2-ata-1.0`, `pci-0000:00:05.0-scsi-0:0:0:0`,
 * `pci-0000:00:14.0-usb-0:1:1.0-scsi-0:0:0:0`. Empty for virtual devices (loop, md, dm).
 */
export function diskByPathNames(name: string, sys: SysfsReader): string[] {
  const devpath = sys.realpath(`/sys/block/${name}`);
  if (!devpath || devpath.startsWith('/sys/devices/virtual/')) return [];
  let parts: string[] = [];
  let compat: string[] | undefined;
  const chain = parents(devpath);
  let pci: string | undefined;
  let lastSubsystem = '';
  for (const p of chain) {
    const n = base(p);
    if (PCI.test(n)) {
      pci = n;
      break;
    }
    if (SCSI_DEVICE.test(n)) {
      const [, host, ch, tgt, lun] = SCSI_DEVICE.exec(n)!.map(Number);
      const ata = chain.find((x) => /^ata\d+$/.test(base(x)));
      if (ata) {
        // libata: the port number, then the PMP port (0 without a port multiplier).
        const port = attr(sys, `${ata}/ata_port/${base(ata)}/port_no`) ?? base(ata).slice(3);
        parts.unshift(`ata-${port}.${ch}`);
        compat = [`ata-${port}`];
      } else {
        // The host number counted from the lowest host of the same adapter.
        const hostDir = chain.find((x) => base(x) === `host${host}`);
        const adapter = hostDir ? hostDir.slice(0, hostDir.lastIndexOf('/')) : undefined;
        const hosts = adapter ? sys.list(adapter).map((x) => /^host(\d+)$/.exec(x)?.[1]).filter((x): x is string => !!x).map(Number) : [];
        const first = hosts.length ? Math.min(...hosts) : host;
        parts.unshift(`scsi-${host - first}:${ch}:${tgt}:${lun}`);
      }
      lastSubsystem = 'scsi';
      continue;
    }
    if (USB_INTERFACE.test(n)) {
      // `1-1.2:1.0` → `usb-0:1.2:1.0`.
      const m = /^\d+-([\d.]+):(\d+\.\d+)$/.exec(n)!;
      parts.unshift(`usb-0:${m[1]}:${m[2]}`);
      lastSubsystem = 'usb';
      continue;
    }
    if (/^nvme\d+$/.test(n) && lastSubsystem !== 'nvme') {
      const nsid = attr(sys, `/sys/block/${name}/nsid`) ?? /n(\d+)$/.exec(name)?.[1];
      if (nsid) parts.unshift(`nvme-${nsid}`);
      lastSubsystem = 'nvme';
    }
  }
  if (!pci) return [];
  // USB paths carry no ATA compat form; usb skips the SCSI compat too.
  parts = [`pci-${pci}`, ...parts];
  const out = [parts.join('-')];
  if (compat) out.push([`pci-${pci}`, ...compat].join('-'));
  if (/^vd[a-z]+$/.test(name) && parts.length === 1) out.push(`virtio-${parts[0]}`);
  return out;
}
