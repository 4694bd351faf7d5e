/**
 * File system rules of the planner: smallest sizes, label lengths, modules, mkfs command lines
 * and fstab types.
 */

/** Smallest device each mkfs accepts (measured: xfsprogs 6.1, btrfs-progs 6.2). */
export const FS_MIN_BYTES: Record<string, number> = { xfs: 300 * 1024 * 1024, btrfs: 109 * 1024 * 1024, ext2: 1024 * 1024, ext3: 2 * 1024 * 1024, ext4: 2 * 1024 * 1024, swap: 64 * 1024 };
export const LABEL_MAX: Record<string, number> = { ext2: 16, ext3: 16, ext4: 16, xfs: 12, btrfs: 255, vfat: 11, fat12: 11, fat16: 11, fat32: 11, msdos: 11, swap: 16, reiserfs: 16, jfs: 16 };
export const FAT = new Set(['vfat', 'fat12', 'fat16', 'fat32', 'msdos']);

export const FS_MODULES: Record<string, string[]> = {
  ext2: ['ext4', 'crc32c_generic'], ext3: ['ext4', 'crc32c_generic'], ext4: ['ext4', 'crc32c_generic'], xfs: ['xfs'], btrfs: ['btrfs'],
  vfat: ['vfat', 'nls_cp437', 'nls_utf8', 'nls_ascii'], fat12: ['vfat', 'nls_cp437', 'nls_utf8', 'nls_ascii'], fat16: ['vfat', 'nls_cp437', 'nls_utf8', 'nls_ascii'],
  fat32: ['vfat', 'nls_cp437', 'nls_utf8', 'nls_ascii'], msdos: ['msdos', 'nls_cp437'], reiserfs: ['reiserfs'], jfs: ['jfs'],
};

export function mkfsArgv(fs: string, device: string, uuid: string | undefined, label: string | undefined, opts: string[]): string[] {
  const L = (flag: string) => (label !== undefined ? [flag, label] : []);
  switch (fs) {
    case 'ext2': case 'ext3': case 'ext4':
      return [`mkfs.${fs}`, '-F', '-q', '-U', uuid!, ...L('-L'), ...opts, device];
    case 'xfs':
      return ['mkfs.xfs', '-f', '-q', '-m', `uuid=${uuid}`, ...L('-L'), ...opts, device];
    case 'btrfs':
      return ['mkfs.btrfs', '-f', '-q', '-U', uuid!, ...L('-L'), ...opts, device];
    case 'vfat': case 'fat12': case 'fat16': case 'fat32': case 'msdos': {
      const bits = fs === 'fat32' ? ['-F', '32'] : fs === 'fat16' ? ['-F', '16'] : fs === 'fat12' ? ['-F', '12'] : [];
      const userBits = opts.includes('-F') ? [] : bits;
      return ['mkfs.fat', ...userBits, '-i', uuid!.replace('-', ''), ...L('-n'), ...opts, device];
    }
    case 'swap':
      return ['mkswap', '-U', uuid!, ...L('-L'), ...opts, device];
    case 'reiserfs':
      return ['mkfs.reiserfs', '-q', '-f', '-u', uuid!, ...L('-l'), ...opts, device];
    case 'jfs':
      return ['mkfs.jfs', '-q', ...L('-L'), ...opts, device];
    default:
      throw new Error(`no mkfs for ${fs}`);
  }
}

export function fstabType(fs: string): string {
  if (fs === 'fat12' || fs === 'fat16' || fs === 'fat32') return 'vfat';
  return fs;
}
