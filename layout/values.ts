/**
 * What a layout value may be, for the tool or file it ends up in. The one home of these rules:
 * the parser (parse.ts) checks every attribute against them where it is read, so no value that
 * would become an extra command word, an extra option naming another disk, or an extra fstab
 * line ever reaches a plan.
 *
 * Why each rule exists (all reproduced):
 * - parted splits its words again, even in script mode: a GPT name with spaces became more
 *   parted commands (`x 2048s 4095s select /dev/OTHER mklabel msdos`) and wiped another disk;
 * - mkfs takes positional device arguments after its options: `mkfs_opts="-d single /dev/OTHER"`
 *   made another disk part of a btrfs, and `-J device=/dev/X` (ext4) or `-l logdev=` (xfs)
 *   name another disk inside an option value. Option lists are therefore checked token by token
 *   against a whitelist of the options each tool documents, with their values;
 * - fstab is split on whitespace and newlines: spaces are written as fstab escapes (`\040`),
 *   control characters are refused (a newline adds a mount line of the layout's choosing).
 */

/** Control characters (C0, DEL, C1) and the Unicode line and paragraph separators. */
export const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** A value with a control character, or undefined. Shown escaped, so the message is one line. */
export function controlProblem(v: string): string | undefined {
  const m = CONTROL_RE.exec(v);
  if (!m) return undefined;
  return `${JSON.stringify(v)} contains the control character U+${m[0].charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}`;
}

/** GPT partition names: UTF-16, 36 units; parted re-splits words and reads quotes and backslashes. */
export const GPT_NAME_MAX = 36;
export function gptNameProblem(name: string): string | undefined {
  if (/[\s"'\\]/.test(name)) return `GPT name ${JSON.stringify(name)} has whitespace, a quote or a backslash, which parted would read as more words`;
  if (name.startsWith('-')) return `GPT name ${JSON.stringify(name)} starts with "-", which parted would read as an option`;
  if (name.length > GPT_NAME_MAX) return `GPT name ${JSON.stringify(name)} is ${name.length} UTF-16 units long; GPT holds ${GPT_NAME_MAX}`;
  return undefined;
}

/**
 * A name found on a disk made into a GPT name a layout may hold (`layout capture`): tools write
 * names such as "EFI System Partition"; the captured layout must read back without an error.
 */
export function safeGptName(name: string): string | undefined {
  const s = name.replace(/[\s"'\\]+/g, '-').replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '').replace(/^-+/, '').slice(0, GPT_NAME_MAX);
  return s && !gptNameProblem(s) ? s : undefined;
}

/** Device paths the layout names: /dev/NAME with the characters the kernel and udev use. */
export function devicePathProblem(dev: string): string | undefined {
  if (!/^\/dev\/[A-Za-z0-9_.:+@,=-]+(\/[A-Za-z0-9_.:+@,=-]+)*$/.test(dev)) return `"${dev}" is not a device path (/dev/NAME of letters, digits and _ . : + @ , = -)`;
  if (dev.split('/').some((c) => c === '..' || c === '.')) return `"${dev}" contains "." or ".." components`;
  return undefined;
}

/** A mount point: absolute, no `.` or `..` components; spaces are escaped in fstab. */
export function mountPointProblem(mp: string): string | undefined {
  if (mp === 'swap' || mp === 'none') return undefined;
  if (!mp.startsWith('/')) return `mount point "${mp}" is not an absolute path, swap or none`;
  if (mp.split('/').some((c) => c === '..' || c === '.')) return `mount point "${mp}" contains "." or "..": mount points stay inside the installed system`;
  if (/\\/.test(mp)) return `mount point "${mp}" contains a backslash`;
  return undefined;
}

/** Mount options: a comma list of words, as mount(8) and fstab read them. */
export function mountOptionsProblem(opts: string): string | undefined {
  if (/[\s"'\\#]/.test(opts)) return `mount options ${JSON.stringify(opts)} contain whitespace, a quote, a backslash or "#"`;
  if (opts.split(',').some((o) => o === '')) return `mount options "${opts}" have an empty item`;
  if (!/^[A-Za-z0-9_.:=+@%/,-]+$/.test(opts)) return `mount options "${opts}" have characters mount options do not use`;
  return undefined;
}

/** A file system type as fstab and `mount -t` take it (`ext4`, `nfs4`, `fuse.sshfs`). */
export function fsTypeProblem(fs: string): string | undefined {
  return /^[a-z0-9][a-z0-9_.+-]*$/i.test(fs) ? undefined : `file system type "${fs}" is not a type name (letters, digits and _ . + -)`;
}

/**
 * One fstab field, written as fstab(5) and getmntent(3) read it back: space, tab, newline and
 * backslash as octal escapes. The parser refuses control characters, so only space and backslash
 * are met in practice; a field that starts with `#` would turn the line into a comment.
 */
export function fstabField(v: string): string {
  const s = v.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return s.startsWith('#') ? `\\043${s.slice(1)}` : s;
}

// ---------------------------------------------------------------------------------------------
// Option lists: mkfs_opts and lv_options

/** How an option's value is checked: a pattern for the whole value, or sub-options `k=v,k=v`. */
type ValueRule = { re: RegExp } | { sub: Record<string, RegExp> };
/** An option: no value (null), or its value rule; `--long=value` and `-Xvalue` forms are read too. */
type OptionTable = Record<string, ValueRule | null>;

const N = /^[0-9]+[kmgtKMGT]?$/; // a count or a size with a suffix
const WORD = /^[A-Za-z0-9_.+-]+$/;
const BOOL = /^[01]$/;
const num = { re: N };
const word = { re: WORD };
/** A comma list of words, each optionally negated with ^ (ext4 -O, btrfs -O). */
const FEATURES = { re: /^\^?[A-Za-z0-9_-]+(,\^?[A-Za-z0-9_-]+)*$/ };

const MKE2FS: OptionTable = {
  '-b': num, '-C': num, '-g': num, '-G': num, '-i': num, '-I': num, '-m': { re: /^[0-9]+(\.[0-9]+)?$/ }, '-N': num,
  '-j': null, '-O': FEATURES, '-r': { re: /^[01]$/ }, '-T': word, '-e': { re: /^(continue|remount-ro|panic)$/ },
  '-o': word, '-K': null, '-D': null, '-F': null, '-q': null, '-v': null, '-t': { re: /^ext[234]$/ },
  '-E': { sub: { stride: N, stripe_width: N, 'stripe-width': N, resize: N, lazy_itable_init: BOOL, lazy_journal_init: BOOL, packed_meta_blocks: BOOL, num_backup_sb: /^[0-2]$/, root_owner: /^[0-9]+:[0-9]+$/, discard: /^$/, nodiscard: /^$/, quotatype: /^[a-z:]+$/, encoding: WORD, encoding_flags: WORD, assume_storage_prezeroed: BOOL, test_fs: /^$/ } },
  // An internal journal's size only: `device=` would name another disk.
  '-J': { sub: { size: N } },
};
const MKFS_XFS: OptionTable = {
  '-b': { sub: { size: N } },
  '-m': { sub: { crc: BOOL, finobt: BOOL, reflink: BOOL, rmapbt: BOOL, bigtime: BOOL, inobtcount: BOOL } },
  '-d': { sub: { agcount: N, agsize: N, su: N, sw: N, sunit: N, swidth: N, noalign: /^$/, cowextsize: N, extszinherit: N } },
  '-i': { sub: { size: N, maxpct: N, align: BOOL, attr: /^[12]$/, projid32bit: BOOL, sparse: BOOL, nrext64: BOOL, perblock: N } },
  // An internal log only: `logdev=` would name another disk.
  '-l': { sub: { size: N, version: /^[12]$/, su: N, sunit: N, 'lazy-count': BOOL, internal: /^1$/, agnum: N } },
  '-n': { sub: { size: N, version: /^(2|ci)$/, ftype: BOOL } },
  '-s': { sub: { size: N } },
  '-K': null, '-f': null, '-q': null,
};
const BTRFS_PROFILE = { re: /^(single|dup|raid0|raid1|raid1c3|raid1c4|raid10|raid5|raid6)$/ };
const MKFS_BTRFS: OptionTable = {
  '-d': BTRFS_PROFILE, '--data': BTRFS_PROFILE, '-m': BTRFS_PROFILE, '--metadata': BTRFS_PROFILE,
  '-M': null, '--mixed': null, '-n': num, '--nodesize': num, '-s': num, '--sectorsize': num, '-b': num, '--byte-count': num,
  '-O': FEATURES, '--features': FEATURES, '-R': FEATURES, '--runtime-features': FEATURES,
  '--csum': { re: /^(crc32c|xxhash|sha256|blake2)$/ }, '--checksum': { re: /^(crc32c|xxhash|sha256|blake2)$/ },
  '-K': null, '--nodiscard': null, '-f': null, '--force': null, '-q': null, '--quiet': null,
};
const MKFS_FAT: OptionTable = {
  '-F': { re: /^(12|16|32)$/ }, '-s': num, '-S': num, '-R': num, '-f': num, '-r': num, '-h': num, '-M': { re: /^(0x)?[0-9a-fA-F]+$/ },
  '-D': { re: /^(0x)?[0-9a-fA-F]+$/ }, '-a': null, '-I': null, '-v': null, '--codepage': num, '--invariant': null, '-b': num,
  '--mbr': { re: /^(y|yes|n|no|a|auto)$/ },
};
const MKSWAP: OptionTable = { '-p': num, '--pagesize': num, '-f': null, '--force': null, '-q': null, '--quiet': null, '-c': null, '--check': null };
const MKFS_REISERFS: OptionTable = { '-b': num, '--block-size': num, '-h': { re: /^(rupasov|tea|r5)$/ }, '--format': { re: /^3\.[56]$/ }, '-s': num, '-q': null, '-f': null };
const MKFS_JFS: OptionTable = { '-s': num, '-q': null, '-O': null };

export const MKFS_OPTIONS: Record<string, OptionTable> = {
  ext2: MKE2FS, ext3: MKE2FS, ext4: MKE2FS, xfs: MKFS_XFS, btrfs: MKFS_BTRFS,
  vfat: MKFS_FAT, fat12: MKFS_FAT, fat16: MKFS_FAT, fat32: MKFS_FAT, msdos: MKFS_FAT,
  swap: MKSWAP, reiserfs: MKFS_REISERFS, jfs: MKFS_JFS,
};

/** Options Ferry sets itself (device, UUID, label): given in mkfs_opts they would fight the plan. */
export const MKFS_RESERVED: Record<string, Record<string, string>> = {
  ext: { '-U': 'the UUID comes from the plan\'s seed (or mount_dev="UUID=…")', '-L': 'give the label with label="…"', '-d': 'populating from a directory is not a layout option', '-S': 'rewriting only the superblock is not an install', '-n': 'a dry run makes no file system', '-c': 'bad block scans belong to the burn-in, not the install', '-l': 'a bad blocks file is a path on the installer', '-M': 'the last-mounted directory is set by the kernel' },
  xfs: { '-L': 'give the label with label="…"', '-N': 'a dry run makes no file system', '-p': 'a protofile is a path on the installer', '-r': 'a realtime device is another disk' },
  btrfs: { '-U': 'the UUID comes from the plan\'s seed', '-L': 'give the label with label="…"', '-r': 'populating from a directory is not a layout option', '--rootdir': 'populating from a directory is not a layout option' },
  fat: { '-n': 'give the label with label="…"', '-i': 'the volume id comes from the plan\'s seed', '-C': 'mkfs.fat -C creates a file', '-c': 'bad block scans belong to the burn-in', '-l': 'a bad blocks file is a path on the installer', '-m': 'a boot message file is a path on the installer' },
};
const RESERVED_OF: Record<string, Record<string, string>> = {
  ext2: MKFS_RESERVED.ext, ext3: MKFS_RESERVED.ext, ext4: MKFS_RESERVED.ext, xfs: MKFS_RESERVED.xfs, btrfs: MKFS_RESERVED.btrfs,
  vfat: MKFS_RESERVED.fat, fat12: MKFS_RESERVED.fat, fat16: MKFS_RESERVED.fat, fat32: MKFS_RESERVED.fat, msdos: MKFS_RESERVED.fat,
};

const LV_TYPES = /^(linear|striped|mirror|raid0|raid1|raid4|raid5|raid6|raid10|raid5_ls|raid5_la|raid5_rs|raid5_ra|raid6_zr|raid6_nr|raid6_nc)$/;
/** lvcreate options a layout may add (`lv_options`); -n, -l/-L, -y, -W, -Z and the VG are Ferry's. */
export const LVCREATE_OPTIONS: OptionTable = {
  '-i': num, '--stripes': num, '-I': num, '--stripesize': num, '-r': { re: /^(auto|none|[0-9]+)$/ }, '--readahead': { re: /^(auto|none|[0-9]+)$/ },
  '-C': { re: /^[yn]$/ }, '--contiguous': { re: /^[yn]$/ }, '--type': { re: LV_TYPES }, '-m': num, '--mirrors': num,
  '--alloc': { re: /^(contiguous|cling|cling_by_tags|normal|anywhere|inherit)$/ }, '--addtag': word, '-R': num, '--regionsize': num,
  '-p': { re: /^(r|rw)$/ }, '--permission': { re: /^(r|rw)$/ }, '--nosync': null,
};

function valueProblem(opt: string, v: string, rule: ValueRule): string | undefined {
  if ('re' in rule) return rule.re.test(v) ? undefined : `the value "${v}" of ${opt} is not one it takes`;
  for (const item of v.split(',')) {
    const eq = item.indexOf('=');
    const k = eq < 0 ? item : item.slice(0, eq);
    const val = eq < 0 ? '' : item.slice(eq + 1);
    const re = Object.hasOwn(rule.sub, k) ? rule.sub[k] : undefined;
    if (!re) return `${opt} ${k}${eq < 0 ? '' : '='}: "${k}" is not one of the sub-options Ferry lets a layout give (${Object.keys(rule.sub).join(', ')})`;
    if (!re.test(val) && !(val === '' && re.test('1'))) return `${opt} ${k}=${val}: the value is not one ${k} takes`;
  }
  return undefined;
}

/**
 * Check an option list token by token: every word must be an option of `table` (or the value
 * of the option before it), never a positional argument (a device, a file) and never an option
 * Ferry sets itself. Returns every problem found.
 */
export function optionListProblems(tokens: string[], table: OptionTable, reserved: Record<string, string> = {}, tool = 'the tool'): string[] {
  const out: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t === '') continue;
    if (/["'\\`$;|&<>]/.test(t) || CONTROL_RE.test(t)) {
      out.push(`"${t}" has a quote or a shell character; options are passed as words, never through a shell, so quoting cannot work`);
      continue;
    }
    if (!t.startsWith('-') || t === '-' || t === '--') {
      out.push(`"${t}" is not an option: ${tool} would take it as ${t.startsWith('/') ? 'another device or file' : 'a positional argument'}; only options may be given`);
      continue;
    }
    let opt = t;
    let attached: string | undefined;
    if (t.startsWith('--') && t.includes('=')) {
      opt = t.slice(0, t.indexOf('='));
      attached = t.slice(t.indexOf('=') + 1);
    } else if (!t.startsWith('--') && t.length > 2) {
      opt = t.slice(0, 2);
      attached = t.slice(2);
    }
    if (Object.hasOwn(reserved, opt)) {
      out.push(`${opt} is set by Ferry: ${reserved[opt]}`);
      if (attached === undefined && i + 1 < tokens.length && !tokens[i + 1].startsWith('-')) i++;
      continue;
    }
    if (!Object.hasOwn(table, opt)) {
      out.push(`${opt} is not an option Ferry lets a layout give to ${tool} (accepted: ${Object.keys(table).join(' ')})`);
      continue;
    }
    const rule = table[opt];
    if (rule === null) {
      if (attached !== undefined) out.push(`${opt} takes no value ("${t}")`);
      continue;
    }
    const v = attached ?? tokens[++i];
    if (v === undefined) {
      out.push(`${opt} needs a value`);
      continue;
    }
    const p = valueProblem(opt, v, rule);
    if (p) out.push(p);
  }
  return out;
}

export function mkfsOptionProblems(fs: string, tokens: string[]): string[] {
  const table = MKFS_OPTIONS[fs];
  if (!table) return tokens.length ? [`mkfs_opts are not taken for file system "${fs}"`] : [];
  return optionListProblems(tokens, table, RESERVED_OF[fs] ?? {}, `mkfs for ${fs}`);
}

export function lvOptionProblems(tokens: string[]): string[] {
  return optionListProblems(tokens, LVCREATE_OPTIONS, { '-n': 'the name is the lv\'s name attribute', '--name': 'the name is the lv\'s name attribute', '-l': 'the size is the lv\'s size attribute', '-L': 'the size is the lv\'s size attribute', '--size': 'the size is the lv\'s size attribute', '--extents': 'the size is the lv\'s size attribute' }, 'lvcreate');
}

// ---------------------------------------------------------------------------------------------
// Unknown names: did you mean…

/** Levenshtein distance (small strings: attribute and element names). */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length];
}

/** The closest known name, when it is close enough to be a misspelling. */
export function didYouMean(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const lower = name.toLowerCase();
  for (const k of known) {
    const d = editDistance(lower, k);
    if (d < bestD) {
      best = k;
      bestD = d;
    }
  }
  const limit = Math.max(1, Math.min(3, Math.floor(name.length / 3)));
  return best !== undefined && bestD <= limit ? best : undefined;
}
