/**
 * Device names: how Linux names the partitions of a disk, and how layouts name arrays and
 * logical volumes. Pure string functions; the table-driven tests list every naming scheme.
 */

/**
 * The device node of partition `n` of `disk`. The kernel inserts a `p` when the disk's name
 * ends in a digit (nvme0n1p1, mmcblk0p1, loop0p1, md0p1) and not otherwise (sda1, vda1, xvda1,
 * hda1); udev's by-id/by-path links use `-partN`.
 */
export function partitionDevice(disk: string, n: number): string {
  if (/^\/dev\/disk\/by-[a-z]+\//.test(disk)) return `${disk}-part${n}`;
  return /[0-9]$/.test(disk) ? `${disk}p${n}` : `${disk}${n}`;
}

/**
 * Split a partition device into its disk and number, when it belongs to one of `disks`.
 * Only the kernel's own spelling matches: `/dev/nvme0n11` is not partition 1 of `/dev/nvme0n1`.
 */
export function splitPartitionDevice(dev: string, disks: readonly string[]): { disk: string; num: number } | undefined {
  // Longest disk first, so /dev/sda does not claim /dev/sdaa1.
  for (const disk of [...disks].sort((a, b) => b.length - a.length)) {
    if (!dev.startsWith(disk) || dev === disk) continue;
    const m = /^(?:p|-part)?([0-9]+)$/.exec(dev.slice(disk.length));
    if (!m) continue;
    const num = Number(m[1]);
    if (partitionDevice(disk, num) === dev) return { disk, num };
  }
  return undefined;
}

/** device-mapper doubles dashes inside names: vg `my-vg`, lv `root` → `my--vg-root`. */
export function lvMapperName(vg: string, lv: string): string {
  return `${vg.replace(/-/g, '--')}-${lv.replace(/-/g, '--')}`;
}

/** The node device-mapper itself creates (no udev needed). */
export function lvDevice(vg: string, lv: string): string {
  return `/dev/mapper/${lvMapperName(vg, lv)}`;
}

/** Read `/dev/vg/lv` or `/dev/mapper/vg-lv` given the known groups. */
export function splitLvDevice(dev: string, groups: readonly string[]): { vg: string; lv: string } | undefined {
  let m = /^\/dev\/mapper\/(.+)$/.exec(dev);
  if (m) {
    for (const vg of groups) {
      const prefix = vg.replace(/-/g, '--') + '-';
      if (m[1].startsWith(prefix)) {
        const rest = m[1].slice(prefix.length);
        if (rest && !/(^|[^-])-([^-]|$)/.test(rest)) return { vg, lv: rest.replace(/--/g, '-') };
      }
    }
    return undefined;
  }
  m = /^\/dev\/([^/]+)\/([^/]+)$/.exec(dev);
  if (m && groups.includes(m[1])) return { vg: m[1], lv: m[2] };
  return undefined;
}

/** Last path component: `/dev/nvme0n1` → `nvme0n1`. */
export function baseName(dev: string): string {
  return dev.slice(dev.lastIndexOf('/') + 1);
}
