/**
 * What the archive plan (initrd/plan.ts) is decided from, read from the host: listings of
 * the unpacked packages and of initrd/rootfs, the ELF headers of their programs, busybox's
 * applet list, and the driver set's kernel modules staged and indexed by `depmod -b`.
 * The vm harness builds its small initrd from the same pieces.
 */
import { closeSync, copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { run } from '../common/run.js';
import { readElf, type ElfInfo, type ReadAt } from './elf.js';
import { parseModuleIndex, type ModuleIndex } from './modules.js';
import type { RootfsFile, TreeFile } from './plan.js';

/** Every path below root (relative, names sorted, a directory before what it holds). */
export function walk(root: string, rel = '', out: string[] = []): string[] {
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

/** The non-directory entries of an unpacked package. */
export function readTree(dir: string): TreeFile[] {
  const out: TreeFile[] = [];
  for (const rel of walk(dir)) {
    const host = join(dir, rel);
    const st = lstatSync(host);
    if (st.isDirectory()) continue;
    if (st.isSymbolicLink()) out.push({ rel, kind: 'symlink', mode: st.mode, target: readlinkSync(host), host });
    else out.push({ rel, kind: 'file', mode: st.mode, host });
  }
  return out;
}

/** initrd/rootfs: every entry, files with their bytes. */
export function readRootfs(dir: string): RootfsFile[] {
  return walk(dir).map((rel): RootfsFile => {
    const host = join(dir, rel);
    const st = lstatSync(host);
    if (st.isDirectory()) return { rel, kind: 'dir', mode: st.mode };
    if (st.isSymbolicLink()) return { rel, kind: 'symlink', mode: st.mode, target: readlinkSync(host) };
    return { rel, kind: 'file', mode: st.mode, data: readFileSync(host) };
  });
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

/** The interpreter and libraries a host file needs; undefined when it is not an ELF object. */
export function elfOf(file: string): ElfInfo | undefined {
  const st = statSync(file);
  if (st.size < 64) return undefined;
  const r = readAtFile(file);
  try {
    return readElf(r.read);
  } finally {
    r.close();
  }
}

/** `busybox --list-full`: the applets' paths ("bin/ls", "usr/sbin/chroot"…). */
export async function busyboxApplets(busybox: string): Promise<string[]> {
  const list = await run([busybox, '--list-full'], { quiet: true });
  return list.stdout.split('\n').filter(Boolean);
}

/** A kernel's module directory (ROOT/lib/modules/KVER) and its index. */
export function readModuleIndex(kmods: string): ModuleIndex {
  const rd = (f: string) => (existsSync(join(kmods, f)) ? readFileSync(join(kmods, f), 'utf8') : '');
  return parseModuleIndex({ dep: rd('modules.dep'), softdep: rd('modules.softdep'), alias: rd('modules.alias'), builtin: rd('modules.builtin') });
}

/**
 * Stage the selected modules (paths relative to `kmods`) into STAGE/lib/modules/KVER, hard
 * linked where possible, and index them with `depmod -b`. Returns every staged file (the
 * modules and depmod's index files), relative to the staged module directory.
 */
export async function stageModules(kmods: string, kver: string, paths: string[], stage: string): Promise<{ rel: string; host: string }[]> {
  const smods = join(stage, 'lib', 'modules', kver);
  mkdirSync(smods, { recursive: true });
  for (const rel of paths) {
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
  return walk(smods)
    .filter((rel) => !lstatSync(join(smods, rel)).isDirectory())
    .map((rel) => ({ rel, host: join(smods, rel) }));
}
