/**
 * The plan of the boot environment's archive, as data: every path, mode, link target and
 * the host file or bytes it holds, with why it is there. Pure: decided from the package
 * list, the unpacked packages (as listings), what the ELF reader says of their programs,
 * busybox's applet list, the staged kernel modules and the rootfs skeleton. The caller
 * (initrd/inputs.ts) gathers those; initrd/write.ts writes the archive.
 */
import { posix } from 'node:path';
import { FerryError } from '../common/errors.js';
import type { CpioEntry } from './cpio.js';
import type { ElfInfo } from './elf.js';
import type { PackageSpec } from './spec.js';

const PROGRAM_DIRS = ['bin', 'sbin', 'usr/bin', 'usr/sbin'];
const LIB_DIRS = ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu', 'lib64', 'usr/lib64', 'lib', 'usr/lib'];

/** Debian's packages put files in /bin, /sbin, /lib; the initrd is merged-/usr. */
export function mergedUsr(path: string): string {
  const p = path.replace(/^\/+/, '');
  return /^(bin|sbin|lib|lib64)(\/|$)/.test(p) ? 'usr/' + p : p;
}

/** Resolve a symlink's target (as stored) against the link's merged path. */
export function resolveLink(linkPath: string, target: string): string {
  const joined = target.startsWith('/') ? target : posix.join(posix.dirname(linkPath), target);
  return mergedUsr(posix.normalize(joined));
}

/** One non-directory entry of an unpacked package, in the package's own layout. */
export interface TreeFile {
  /** Relative path inside the package ("bin/ls"). */
  rel: string;
  kind: 'file' | 'symlink';
  /** st.mode of the host file. */
  mode: number;
  target?: string;
  /** The host file (read when the archive is written). */
  host: string;
}

export interface PackageTree {
  name: string;
  /** Non-directory entries in walk order (names sorted, parents first). */
  files: TreeFile[];
}

/** One entry of initrd/rootfs (Ferry's own files), directories included. */
export interface RootfsFile {
  rel: string;
  kind: 'dir' | 'file' | 'symlink';
  mode: number;
  target?: string;
  data?: Buffer;
}

export interface PlanInputs {
  spec: PackageSpec;
  /** Every downloaded package but the kernel. */
  packages: PackageTree[];
  /** The ferry-installer executable (host path). */
  installer: string;
  /** What a host file needs at run time; undefined when it is not an ELF object. */
  elf: (host: string) => ElfInfo | undefined;
  /** `busybox --list-full` of the package tree's busybox (undefined when there is none). */
  busyboxApplets?: string[];
  /** The driver set's modules, staged and indexed by depmod: paths relative to lib/modules/KVER. */
  modules: { kver: string; files: { rel: string; host: string }[] };
  rootfs: RootfsFile[];
  drivers: string;
  /** Every package carried, with its version (kernel included). */
  versions: { name: string; version: string }[];
}

export interface ArchivePlan {
  /** In the order they were planned; the writer sorts them. */
  entries: CpioEntry[];
  /** path → why it is there (package name, "rootfs", "modules"…). */
  origin: Map<string, string>;
  /** "NAME VERSION", sorted. */
  packages: string[];
}

/** path → entry; the first writer of a path wins unless it overrides. */
class Entries {
  readonly entries = new Map<string, CpioEntry>();
  readonly origin = new Map<string, string>();

  add(e: CpioEntry, origin: string, override = false): void {
    if (this.entries.has(e.path) && !override) return;
    this.entries.set(e.path, e);
    this.origin.set(e.path, origin);
  }

  /** Every parent directory of every entry exists. */
  closeDirs(): void {
    for (const p of [...this.entries.keys()]) {
      const parts = p.split('/');
      for (let i = 1; i < parts.length; i++) {
        const d = parts.slice(0, i).join('/');
        const have = this.entries.get(d);
        if (!have) this.add({ path: d, kind: 'dir', mode: 0o755 }, 'dirs');
        else if (have.kind !== 'dir' && !(have.kind === 'symlink' && ['bin', 'sbin', 'lib', 'lib64'].includes(d))) {
          throw new FerryError('FERRY_E_INITRD_CONFLICT', `"${d}" is a ${have.kind} in the initrd but "${p}" needs it to be a directory`, {
            details: { path: d, child: p, origin: this.origin.get(d) },
            hint: 'two inputs disagree about this path; remove one of them from initrd/packages.txt or initrd/rootfs',
          });
        }
      }
    }
  }
}

interface SysrootFile {
  file: TreeFile;
  pkg: string;
}

/** One merged view of the packages: the listed ones first (in list order), then their libraries. */
function mergeSysroot(spec: PackageSpec, pkgs: PackageTree[]): Map<string, SysrootFile> {
  const byPkg = new Map(pkgs.map((p) => [p.name, p]));
  const listed = spec.packages.map((p) => byPkg.get(p.name)).filter((p): p is PackageTree => !!p);
  const ordered = [...listed, ...pkgs.filter((p) => !spec.packages.some((s) => s.name === p.name))];
  const sysroot = new Map<string, SysrootFile>();
  for (const p of ordered) {
    for (const f of p.files) {
      const m = mergedUsr(f.rel);
      if (!sysroot.has(m)) sysroot.set(m, { file: f, pkg: p.name });
    }
  }
  return sysroot;
}

function hostEntry(path: string, f: TreeFile): CpioEntry {
  if (f.kind === 'symlink') return { path, kind: 'symlink', mode: 0o777, target: f.target };
  // Set-id bits mean nothing in a root-only environment; keep the permission bits.
  return { path, kind: 'file', mode: f.mode & 0o777, source: f.host };
}

/** The busybox binary of the package trees (whose applets the caller lists), if any. */
export function busyboxOf(spec: PackageSpec, pkgs: PackageTree[]): string | undefined {
  return mergeSysroot(spec, pkgs).get('usr/bin/busybox')?.file.host;
}

/** Plan the whole archive. Throws FERRY_E_INITRD_MISSING naming everything that is lacking. */
export function planArchive(i: PlanInputs): ArchivePlan {
  const { spec } = i;
  const sysroot = mergeSysroot(spec, i.packages);
  const plan = new Entries();
  const missing: string[] = [];
  const elfQueue: string[] = [];

  /** Add a sysroot path (merged form), following symlinks to their targets. */
  const addPath = (path: string, depth = 0): boolean => {
    if (plan.entries.has(path)) return true;
    const f = sysroot.get(path);
    if (!f || depth > 16) return false;
    const e = hostEntry(path, f.file);
    plan.add(e, f.pkg);
    if (e.kind === 'symlink') {
      const t = resolveLink(path, e.target!);
      if (!addPath(t, depth + 1)) missing.push(`${t} (target of ${path}, from ${f.pkg})`);
    } else if (e.kind === 'file') {
      elfQueue.push(path);
    }
    return true;
  };

  // Programs and files of the listed packages.
  for (const entry of spec.packages) {
    if (entry.librariesOnly) continue;
    const inPkg = [...sysroot.entries()].filter(([, f]) => f.pkg === entry.name).map(([m]) => m);
    for (const prog of entry.programs) {
      if (prog === '*') {
        for (const m of inPkg) if (PROGRAM_DIRS.some((d) => m.startsWith(`usr/${d.replace(/^usr\//, '')}/`))) addPath(m);
        continue;
      }
      const found = ['usr/sbin', 'usr/bin'].map((d) => `${d}/${prog}`).find((m) => sysroot.get(m)?.pkg === entry.name);
      if (!found) missing.push(`program ${prog} (package ${entry.name}, initrd/packages.txt line ${entry.line})`);
      else addPath(found);
    }
    for (const file of entry.files) {
      const m = mergedUsr(file);
      if (sysroot.get(m)?.pkg !== entry.name) missing.push(`file ${file} (package ${entry.name}, initrd/packages.txt line ${entry.line})`);
      else addPath(m);
    }
  }

  // The installer.
  plan.add({ path: 'usr/bin/ferry-installer', kind: 'file', mode: 0o755, source: i.installer }, 'ferry-installer');

  // Shared libraries: the ELF dependencies of everything so far, transitively.
  const libIndex = (soname: string, runpath: string[]): string | undefined => {
    for (const d of [...runpath.map((r) => r.replace(/^\/+/, '')), ...LIB_DIRS]) {
      const m = mergedUsr(`${d}/${soname}`);
      if (sysroot.has(m)) return m;
    }
    return undefined;
  };
  const seenElf = new Set<string>();
  const needElf = (path: string, host: string) => {
    if (seenElf.has(path)) return;
    seenElf.add(path);
    const info = i.elf(host);
    if (!info) return;
    if (info.interpreter) {
      if (!addPath(mergedUsr(info.interpreter))) missing.push(`interpreter ${info.interpreter} (of ${path})`);
    }
    for (const so of info.needed) {
      const m = libIndex(so, info.runpath);
      if (!m) missing.push(`library ${so} (needed by ${path})`);
      else addPath(m);
    }
  };
  needElf('usr/bin/ferry-installer', i.installer);
  while (elfQueue.length) {
    const p = elfQueue.shift()!;
    needElf(p, sysroot.get(p)!.file.host);
  }

  // busybox's applets, where no real program took the name.
  if (!sysroot.has('usr/bin/busybox') || !plan.entries.has('usr/bin/busybox') || !i.busyboxApplets) missing.push('usr/bin/busybox (package busybox-static)');
  else {
    for (const a of [...i.busyboxApplets].filter(Boolean).sort()) {
      const m = mergedUsr(a);
      if (m === 'usr/bin/busybox' || m === 'linuxrc') continue;
      const name = m.split('/').pop()!;
      // The other directory may already hold the real program (mount in usr/bin, not usr/sbin).
      const twin = m.startsWith('usr/sbin/') ? `usr/bin/${name}` : `usr/sbin/${name}`;
      if (!plan.entries.has(m) && !plan.entries.has(twin)) plan.add({ path: m, kind: 'symlink', mode: 0o777, target: '/usr/bin/busybox' }, 'busybox-static');
    }
  }
  if (plan.entries.get('usr/bin/sh')?.target === '/usr/bin/busybox') missing.push('usr/bin/sh: a shell other than busybox (package dash)');
  if (missing.length) {
    throw new FerryError('FERRY_E_INITRD_MISSING', `the boot environment lacks ${missing.length} thing(s) it needs:\n  ${[...new Set(missing)].join('\n  ')}`, {
      details: { missing },
      hint: 'add the package that provides them to initrd/packages.txt (or stop excluding it), or fix the program name',
    });
  }

  // Kernel modules: the driver set's closure, as depmod indexed it.
  const { kver } = i.modules;
  for (const f of i.modules.files) plan.add({ path: `usr/lib/modules/${kver}/${f.rel}`, kind: 'file', mode: 0o644, source: f.host }, 'modules');

  // Ferry's own files, the skeleton, and what describes this build.
  for (const f of i.rootfs) {
    // Git keeps only the executable bit: normalize so that a checkout's umask does not matter.
    if (f.kind === 'dir') plan.add({ path: f.rel, kind: 'dir', mode: 0o755 }, 'rootfs', true);
    else if (f.kind === 'symlink') plan.add({ path: f.rel, kind: 'symlink', mode: 0o777, target: f.target }, 'rootfs', true);
    else plan.add({ path: f.rel, kind: 'file', mode: f.mode & 0o111 ? 0o755 : 0o644, data: f.data }, 'rootfs', true);
  }
  for (const d of ['usr/bin', 'usr/sbin', 'usr/lib', 'usr/lib64']) plan.add({ path: d, kind: 'dir', mode: 0o755 }, 'skeleton');
  for (const l of ['bin', 'sbin', 'lib', 'lib64']) plan.add({ path: l, kind: 'symlink', mode: 0o777, target: `usr/${l}` }, 'skeleton', true);
  for (const d of ['proc', 'sys', 'dev', 'run', 'mnt', 'etc', 'var', 'usr/share']) plan.add({ path: d, kind: 'dir', mode: 0o755 }, 'skeleton');
  plan.add({ path: 'root', kind: 'dir', mode: 0o700 }, 'skeleton');
  plan.add({ path: 'tmp', kind: 'dir', mode: 0o1777 }, 'skeleton');
  plan.add({ path: 'var/tmp', kind: 'dir', mode: 0o1777 }, 'skeleton');
  // The kernel opens /dev/console for /init before devtmpfs is mounted.
  plan.add({ path: 'dev/console', kind: 'char', mode: 0o600, major: 5, minor: 1 }, 'skeleton');
  plan.add({ path: 'etc/mtab', kind: 'symlink', mode: 0o777, target: '../proc/self/mounts' }, 'skeleton');
  const packages = i.versions.map((v) => `${v.name} ${v.version}`).sort();
  plan.add(
    { path: 'etc/ferry/initrd.env', kind: 'file', mode: 0o644, data: Buffer.from(`FERRY_INITRD_DRIVERS='${i.drivers}'\nFERRY_INITRD_KERNEL='${kver}'\n`) },
    'build',
  );
  plan.add({ path: 'etc/ferry/packages', kind: 'file', mode: 0o644, data: Buffer.from(packages.join('\n') + '\n') }, 'build');
  plan.closeDirs();
  return { entries: [...plan.entries.values()], origin: plan.origin, packages };
}

/**
 * The plan as text, one entry a line in archive order: path, kind, mode, what it holds
 * (link target, host file with `hostRoot` cut off, or the bytes' length and sha256 prefix)
 * and its origin. For golden tests and for reading.
 */
export function renderPlan(plan: ArchivePlan, opts: { hostRoot?: string; hash?: (b: Buffer) => string } = {}): string {
  const sorted = [...plan.entries].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  const host = (s: string) => (opts.hostRoot && s.startsWith(opts.hostRoot) ? s.slice(opts.hostRoot.length).replace(/^\/+/, '') : s);
  const lines = sorted.map((e) => {
    const mode = e.mode.toString(8).padStart(4, '0');
    let what = '';
    if (e.kind === 'symlink') what = `-> ${e.target}`;
    else if (e.kind === 'char') what = `${e.major},${e.minor}`;
    else if (e.kind === 'file') what = e.data ? `data ${e.data.length} bytes${opts.hash ? ' ' + opts.hash(e.data) : ''}` : `source ${host(e.source!)}`;
    return [e.path, e.kind, mode, what, `(${plan.origin.get(e.path)})`].filter(Boolean).join(' ');
  });
  return [`# packages: ${plan.packages.join(', ')}`, ...lines, ''].join('\n');
}

/** One line of the build output's breakdown: what a part of the boot environment weighs unpacked. */
export interface PartSize {
  part: string;
  bytes: number;
}

/**
 * What each part of the boot environment costs, unpacked: the installer (the Node binary with the
 * bundle), the kernel modules, and each Debian package with the libraries it brought (by the
 * origin the plan recorded), largest first; the rest (init scripts, directories, links) as one.
 * `sizeOf` gives a file entry's size (the host file's, or its bytes').
 */
export function partSizes(plan: Pick<ArchivePlan, 'entries' | 'origin'>, sizeOf: (e: CpioEntry) => number): PartSize[] {
  const by = new Map<string, number>();
  for (const e of plan.entries) {
    if (e.kind !== 'file') continue;
    const o = plan.origin.get(e.path) ?? 'other';
    const part = o === 'ferry-installer' ? 'installer' : o === 'modules' ? 'kernel modules' : ['rootfs', 'skeleton', 'dirs', 'other'].includes(o) ? 'other' : o;
    by.set(part, (by.get(part) ?? 0) + sizeOf(e));
  }
  return [...by].map(([part, bytes]) => ({ part, bytes })).sort((a, b) => b.bytes - a.bytes || a.part.localeCompare(b.part));
}
