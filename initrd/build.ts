/**
 * Build the boot environment: `make initrd` → build/boot/vmlinuz and
 * build/boot/initrd-<drivers>.img (initrd.img points at the default set).
 *
 * Plan, then apply: the plan is the list of archive entries (every path, mode,
 * symlink target and the host file or bytes it holds), decided from the package
 * list, the driver set and the unpacked packages; applying writes the cpio
 * archive through zstd. The same inputs give the same bytes.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  unlinkSync,
  createWriteStream,
} from 'node:fs';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { once } from 'node:events';
import { FerryError, toFerryError } from '../common/errors.js';
import { run, spawnTool } from '../common/run.js';
import { AptCache, type Fetched } from './apt.js';
import { writeCpio, type CpioEntry } from './cpio.js';
import { readElf, type ReadAt } from './elf.js';
import { parseModuleIndex, selectModules } from './modules.js';
import { parseDriverSet, parsePackageList, type PackageSpec } from './spec.js';

export const SHELL_READY = 'FERRY-SHELL-READY';

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

export interface BuildOptions {
  drivers: string;
  outDir: string;
  /** The installer executable to carry (build/ferry-installer). */
  installer: string;
  cacheDir: string;
  /** The initrd/ source directory (packages.txt, drivers/, rootfs/). */
  srcDir: string;
  /** zstd level. */
  level: number;
  /** mtime of every entry (SOURCE_DATE_EPOCH). */
  epoch: number;
  /** Also point initrd.img at this build. */
  makeDefault: boolean;
  log: (line: string) => void;
}

interface SysrootFile {
  host: string;
  pkg: string;
}

function readAtFile(file: string): { read: ReadAt; close: () => void } {
  const fd = openSync(file, 'r');
  return {
    read: (offset, length) => {
      const b = Buffer.alloc(length);
      const n = readSync(fd, b, 0, length, offset);
      return b.subarray(0, n);
    },
    close: () => closeSync(fd),
  };
}

function elfOf(file: string) {
  const st = statSync(file);
  if (st.size < 64) return undefined;
  const r = readAtFile(file);
  try {
    return readElf(r.read);
  } finally {
    r.close();
  }
}

function walk(root: string, rel = '', out: string[] = []): string[] {
  let names: string[];
  try {
    names = readdirSync(join(root, rel));
  } catch {
    return out;
  }
  for (const n of names.sort()) {
    const r = rel ? `${rel}/${n}` : n;
    const st = lstatSync(join(root, r));
    out.push(r);
    if (st.isDirectory()) walk(root, r, out);
  }
  return out;
}

/** The archive being planned: path → entry; the first writer of a path wins unless it overrides. */
class Plan {
  readonly entries = new Map<string, CpioEntry>();
  /** Why each path is there (package name, "rootfs", "modules"…), for the manifest. */
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

function hostEntry(path: string, host: string): CpioEntry {
  const st = lstatSync(host);
  if (st.isSymbolicLink()) return { path, kind: 'symlink', mode: 0o777, target: readlinkSync(host) };
  if (st.isDirectory()) return { path, kind: 'dir', mode: st.mode & 0o1777 };
  // Set-id bits mean nothing in a root-only environment; keep the permission bits.
  return { path, kind: 'file', mode: st.mode & 0o777, source: host };
}

export interface BuildResult {
  kernelVersion: string;
  vmlinuz: string;
  initrd: string;
  bytes: number;
  uncompressedBytes: number;
  entries: number;
  modules: number;
  sha256: string;
  manifest: string;
  seconds: number;
}

export async function buildInitrd(o: BuildOptions): Promise<BuildResult> {
  const started = Date.now();
  const spec: PackageSpec = parsePackageList(readFileSync(join(o.srcDir, 'packages.txt'), 'utf8'));
  const driverSet = parseDriverSet(o.drivers, (n) => {
    const f = join(o.srcDir, 'drivers', `${n}.txt`);
    return existsSync(f) ? readFileSync(f, 'utf8') : undefined;
  });
  if (!existsSync(o.installer)) {
    throw new FerryError('FERRY_E_INITRD_NO_INSTALLER', `the installer executable ${o.installer} does not exist`, {
      details: { installer: o.installer },
      hint: 'build it first with `make installer` (make initrd does this), or give --installer PATH',
    });
  }

  // 1. Packages.
  const apt = new AptCache(o.cacheDir);
  const kernelPkg = await apt.kernelPackage(spec.kernel);
  const names = await apt.closure(spec.packages.map((p) => p.name), spec.exclude);
  o.log(`packages: ${names.length} (${spec.packages.length} listed, the rest their libraries), kernel ${kernelPkg}`);
  const versions = await apt.versions([...names, kernelPkg]);
  const fetched = await apt.fetch(versions);
  const kernel = fetched.find((f) => f.name === kernelPkg)!;
  const pkgs = fetched.filter((f) => f.name !== kernelPkg);

  // 2. One merged view of every unpacked package (the kernel's modules aside).
  const sysroot = new Map<string, SysrootFile>();
  const byPkg = new Map<string, Fetched>(pkgs.map((p) => [p.name, p]));
  const ordered = [...spec.packages.map((p) => byPkg.get(p.name)!), ...pkgs.filter((p) => !spec.packages.some((s) => s.name === p.name))];
  for (const p of ordered) {
    for (const rel of walk(p.dir)) {
      const st = lstatSync(join(p.dir, rel));
      if (st.isDirectory()) continue;
      const m = mergedUsr(rel);
      if (!sysroot.has(m)) sysroot.set(m, { host: join(p.dir, rel), pkg: p.name });
    }
  }

  const plan = new Plan();
  const missing: string[] = [];
  const elfQueue: string[] = [];

  /** Add a sysroot path (merged form), following symlinks to their targets. */
  const addPath = (path: string, origin: string, depth = 0): boolean => {
    if (plan.entries.has(path)) return true;
    const f = sysroot.get(path);
    if (!f || depth > 16) return false;
    const e = hostEntry(path, f.host);
    plan.add(e, f.pkg);
    if (e.kind === 'symlink') {
      const t = resolveLink(path, e.target!);
      if (!addPath(t, origin, depth + 1)) missing.push(`${t} (target of ${path}, from ${f.pkg})`);
    } else if (e.kind === 'file') {
      elfQueue.push(path);
    }
    return true;
  };

  // 3. Programs and files of the listed packages.
  for (const entry of spec.packages) {
    const p = byPkg.get(entry.name)!;
    if (entry.librariesOnly) continue;
    const inPkg = [...sysroot.entries()].filter(([, f]) => f.pkg === p.name).map(([m]) => m);
    for (const prog of entry.programs) {
      if (prog === '*') {
        for (const m of inPkg) if (PROGRAM_DIRS.some((d) => m.startsWith(`usr/${d.replace(/^usr\//, '')}/`))) addPath(m, entry.name);
        continue;
      }
      const found = ['usr/sbin', 'usr/bin'].map((d) => `${d}/${prog}`).find((m) => sysroot.get(m)?.pkg === p.name);
      if (!found) missing.push(`program ${prog} (package ${entry.name}, initrd/packages.txt line ${entry.line})`);
      else addPath(found, entry.name);
    }
    for (const file of entry.files) {
      const m = mergedUsr(file);
      if (sysroot.get(m)?.pkg !== p.name) missing.push(`file ${file} (package ${entry.name}, initrd/packages.txt line ${entry.line})`);
      else addPath(m, entry.name);
    }
  }

  // 4. The installer.
  plan.add({ path: 'usr/bin/ferry-installer', kind: 'file', mode: 0o755, source: resolve(o.installer) }, 'ferry-installer');
  const extraElf = [{ path: 'usr/bin/ferry-installer', host: resolve(o.installer) }];

  // 5. Shared libraries: the ELF dependencies of everything so far, transitively.
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
    const info = elfOf(host);
    if (!info) return;
    if (info.interpreter) {
      const m = mergedUsr(info.interpreter);
      if (!addPath(m, 'interpreter')) missing.push(`interpreter ${info.interpreter} (of ${path})`);
    }
    for (const so of info.needed) {
      const m = libIndex(so, info.runpath);
      if (!m) missing.push(`library ${so} (needed by ${path})`);
      else addPath(m, 'library');
    }
  };
  for (const x of extraElf) needElf(x.path, x.host);
  while (elfQueue.length) {
    const p = elfQueue.shift()!;
    needElf(p, sysroot.get(p)!.host);
  }

  // 6. busybox's applets, where no real program took the name.
  const busybox = sysroot.get('usr/bin/busybox');
  if (!busybox || !plan.entries.has('usr/bin/busybox')) missing.push('usr/bin/busybox (package busybox-static)');
  else {
    const list = await run([busybox.host, '--list-full'], { quiet: true });
    for (const a of list.stdout.split('\n').filter(Boolean).sort()) {
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

  // 7. Kernel modules: the driver set's closure, indexed again by depmod for this subset.
  const kver = readdirSync(join(kernel.dir, 'lib', 'modules'))[0];
  const kmods = join(kernel.dir, 'lib', 'modules', kver);
  const rd = (f: string) => (existsSync(join(kmods, f)) ? readFileSync(join(kmods, f), 'utf8') : '');
  const idx = parseModuleIndex({ dep: rd('modules.dep'), softdep: rd('modules.softdep'), alias: rd('modules.alias'), builtin: rd('modules.builtin') });
  const sel = selectModules(idx, driverSet);
  const stage = join(o.cacheDir, `stage-${process.pid}-${o.drivers}`);
  rmSync(stage, { recursive: true, force: true });
  const smods = join(stage, 'lib', 'modules', kver);
  try {
    for (const rel of sel.paths) {
      const to = join(smods, rel);
      mkdirSync(dirname(to), { recursive: true });
      try {
        linkSync(join(kmods, rel), to);
      } catch {
        copyFileSync(join(kmods, rel), to);
      }
    }
    for (const f of ['modules.order', 'modules.builtin', 'modules.builtin.modinfo']) {
      if (existsSync(join(kmods, f))) copyFileSync(join(kmods, f), join(smods, f));
    }
    await run(['depmod', '-b', stage, kver], { quiet: true, timeoutMs: 300_000 });
    for (const rel of walk(smods)) {
      const host = join(smods, rel);
      if (lstatSync(host).isDirectory()) continue;
      plan.add({ path: `usr/lib/modules/${kver}/${rel}`, kind: 'file', mode: 0o644, source: host }, 'modules');
    }

    // 8. Ferry's own files, the skeleton, and what describes this build.
    const rootfs = join(o.srcDir, 'rootfs');
    for (const rel of walk(rootfs)) {
      const st = lstatSync(join(rootfs, rel));
      // Git keeps only the executable bit: normalize so that a checkout's umask does not matter.
      if (st.isDirectory()) plan.add({ path: rel, kind: 'dir', mode: 0o755 }, 'rootfs', true);
      else if (st.isSymbolicLink()) plan.add({ path: rel, kind: 'symlink', mode: 0o777, target: readlinkSync(join(rootfs, rel)) }, 'rootfs', true);
      else plan.add({ path: rel, kind: 'file', mode: st.mode & 0o111 ? 0o755 : 0o644, data: readFileSync(join(rootfs, rel)) }, 'rootfs', true);
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
    const pkgLines = versions.map((v) => `${v.name} ${v.version}`).sort();
    plan.add(
      {
        path: 'etc/ferry/initrd.env',
        kind: 'file',
        mode: 0o644,
        data: Buffer.from(`FERRY_INITRD_DRIVERS='${o.drivers}'\nFERRY_INITRD_KERNEL='${kver}'\n`),
      },
      'build',
    );
    plan.add({ path: 'etc/ferry/packages', kind: 'file', mode: 0o644, data: Buffer.from(pkgLines.join('\n') + '\n') }, 'build');
    plan.closeDirs();

    // 9. Apply: kernel, then the archive through zstd into a temporary file, renamed when complete.
    mkdirSync(o.outDir, { recursive: true });
    const vmlinuz = join(o.outDir, 'vmlinuz');
    copyFileSync(join(kernel.dir, 'boot', `vmlinuz-${kver}`), vmlinuz + '.tmp');
    renameSync(vmlinuz + '.tmp', vmlinuz);
    const out = join(o.outDir, `initrd-${o.drivers}.img`);
    const tmp = `${out}.tmp-${process.pid}`;
    const file = createWriteStream(tmp);
    const z = spawnTool(['zstd', '-q', `-${o.level}`, '-T0', '-c'], { timeoutMs: 1_800_000 });
    z.child.stdout!.pipe(file);
    const hash = createHash('sha256');
    const entries = [...plan.entries.values()];
    const uncompressed = await writeCpio(entries, {
      mtime: o.epoch,
      content: (e) => readFileSync(e.source!),
      write: async (b) => {
        hash.update(b);
        if (!z.child.stdin!.write(b)) await once(z.child.stdin!, 'drain');
      },
    });
    z.child.stdin!.end();
    await z.done;
    if (!file.writableFinished) await once(file, 'finish');
    renameSync(tmp, out);
    if (o.makeDefault) {
      const link = join(o.outDir, 'initrd.img');
      rmSync(link, { force: true });
      symlinkSync(`initrd-${o.drivers}.img`, link);
    }
    const bytes = statSync(out).size;
    const manifest = join(o.outDir, `initrd-${o.drivers}.manifest`);
    const sorted = entries.map((e) => e.path).sort();
    writeFileSync(
      manifest,
      [
        `# Ferry boot environment: drivers ${o.drivers}, kernel ${kver}, SOURCE_DATE_EPOCH ${o.epoch}`,
        `# cpio sha256 ${hash.digest('hex')}, ${uncompressed} bytes; ${sel.paths.length} modules`,
        '# packages',
        ...pkgLines.map((l) => `package ${l}`),
        '# entries: path origin',
        ...sorted.map((p) => `${p} ${plan.origin.get(p)}`),
        '',
      ].join('\n'),
    );
    const sha256 = createHash('sha256').update(readFileSync(out)).digest('hex');
    return {
      kernelVersion: kver,
      vmlinuz,
      initrd: out,
      bytes,
      uncompressedBytes: uncompressed,
      entries: entries.length,
      modules: sel.paths.length,
      sha256,
      manifest,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    rmSync(stage, { recursive: true, force: true });
    for (const f of existsSync(o.outDir) ? readdirSync(o.outDir) : []) {
      if (f.includes(`.tmp-${process.pid}`)) unlinkSync(join(o.outDir, f));
    }
  }
}

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

const USAGE = 'initrd-build [--drivers virtual|generic] [--out DIR] [--installer FILE] [--cache DIR] [--level N] [--no-default]';

export async function main(argv: string[]): Promise<number> {
  const { parseArgs } = await import('node:util');
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        drivers: { type: 'string', default: 'virtual' },
        out: { type: 'string', default: 'build/boot' },
        installer: { type: 'string', default: 'build/ferry-installer' },
        cache: { type: 'string' },
        level: { type: 'string', default: '9' },
        'no-default': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (e) {
    throw new FerryError('FERRY_E_USAGE', `${(e as Error).message}\nusage: ${USAGE}`, { hint: 'see the usage line above' });
  }
  if (values.help) {
    process.stdout.write(`usage: ${USAGE}\n`);
    return 0;
  }
  const level = Number(values.level);
  if (!Number.isInteger(level) || level < 1 || level > 19) throw new FerryError('FERRY_E_USAGE', `--level ${values.level}: give a zstd level from 1 to 19\nusage: ${USAGE}`);
  const epochText = process.env.SOURCE_DATE_EPOCH ?? '0';
  if (!/^\d+$/.test(epochText)) throw new FerryError('FERRY_E_USAGE', `SOURCE_DATE_EPOCH="${epochText}" is not a number of seconds`);
  const here = dirname(new URL(import.meta.url).pathname);
  // Bundled as build/initrd-build.mjs: the sources are in ../initrd.
  const srcDir = existsSync(join(here, 'packages.txt')) ? here : join(here, '..', 'initrd');
  const r = await buildInitrd({
    drivers: String(values.drivers),
    outDir: String(values.out),
    installer: String(values.installer),
    cacheDir: String(values.cache ?? join(process.env.FERRY_CACHE || '/var/cache/ferry', 'bootenv')),
    srcDir,
    level,
    epoch: Number(epochText),
    makeDefault: !values['no-default'],
    log: (l) => process.stderr.write(`initrd: ${l}\n`),
  });
  process.stdout.write(
    [
      `kernel   ${relative(process.cwd(), r.vmlinuz)}  ${mib(statSync(r.vmlinuz).size)}  (${r.kernelVersion})`,
      `initrd   ${relative(process.cwd(), r.initrd)}  ${mib(r.bytes)} (zstd -${level}; ${mib(r.uncompressedBytes)} unpacked, ${r.entries} entries, ${r.modules} modules)`,
      `sha256   ${r.sha256}`,
      `manifest ${relative(process.cwd(), r.manifest)}`,
      `built in ${r.seconds.toFixed(1)} s`,
      '',
    ].join('\n'),
  );
  return 0;
}

if (process.argv[1] && /initrd-build\.mjs$|initrd\/build\.[tj]s$/.test(process.argv[1])) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (e) => {
      process.stderr.write(toFerryError(e).format() + '\n');
      process.exitCode = 1;
    },
  );
}
