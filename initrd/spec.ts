/**
 * The boot environment's inputs as data: the package list (initrd/packages.txt) and
 * the driver sets (initrd/drivers/*.txt). Pure parsers; every problem is reported at
 * once with its file and line.
 */
import { ValidationError, type Problem } from '../common/errors.js';

export interface PackageEntry {
  name: string;
  /** Program names to take; `['*']` takes every program. Empty with `librariesOnly` (which may still name files). */
  programs: string[];
  /** Files (absolute paths inside the package) to take as they are. */
  files: string[];
  librariesOnly: boolean;
  line: number;
}

export interface PackageSpec {
  kernel: string;
  packages: PackageEntry[];
  /** Dependencies never to download. */
  exclude: string[];
  /** `hollow PATH SECTION` lines: files carried with that ELF section zero-filled (initrd/slim.ts). */
  hollow: { path: string; section: string; line: number }[];
}

const PKG_RE = /^[a-z0-9][a-z0-9+.-]+$/;
const PROGRAM_RE = /^[A-Za-z0-9_.+-]+$/;

export function parsePackageList(text: string, file = 'initrd/packages.txt'): PackageSpec {
  const problems: Problem[] = [];
  const packages: PackageEntry[] = [];
  const exclude: string[] = [];
  const hollow: PackageSpec['hollow'] = [];
  let kernel: string | undefined;
  const seen = new Set<string>();
  const bad = (line: number, message: string) => problems.push({ severity: 'error', code: 'FERRY_E_INITRD_SPEC', line, message });
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    const words = raw.replace(/#.*/, '').trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) return;
    const [head, ...rest] = words;
    if (head === 'kernel') {
      if (rest.length !== 1 || !PKG_RE.test(rest[0])) return bad(line, 'write "kernel PACKAGE", e.g. "kernel linux-image-amd64"');
      if (kernel) return bad(line, `a second kernel "${rest[0]}" (the first is "${kernel}")`);
      kernel = rest[0];
      return;
    }
    if (head === 'hollow') {
      const [path, section] = rest;
      if (rest.length !== 2 || !path.startsWith('/') || path.includes('..') || !/^\.[A-Za-z0-9_.]+$/.test(section)) {
        return bad(line, 'write "hollow /PATH .SECTION", e.g. "hollow /usr/lib/x86_64-linux-gnu/libicudata.so.72.1 .rodata"');
      }
      if (hollow.some((h) => h.path === path)) return bad(line, `"${path}" is hollowed twice`);
      hollow.push({ path, section, line });
      return;
    }
    if (head.startsWith('!')) {
      const name = head.slice(1);
      if (!PKG_RE.test(name) || rest.length) return bad(line, `"${raw.trim()}": write "!PACKAGE" alone on its line`);
      exclude.push(name);
      return;
    }
    if (!PKG_RE.test(head)) return bad(line, `"${head}" is not a Debian package name`);
    if (seen.has(head)) return bad(line, `package "${head}" is listed twice`);
    seen.add(head);
    const entry: PackageEntry = { name: head, programs: [], files: [], librariesOnly: false, line };
    for (const w of rest) {
      if (w === ':libraries') entry.librariesOnly = true;
      else if (w === '*') entry.programs.push('*');
      else if (w.startsWith('/')) {
        if (w.includes('..') || w.endsWith('/')) bad(line, `file "${w}" must be a plain absolute path to one file`);
        else entry.files.push(w);
      } else if (PROGRAM_RE.test(w)) entry.programs.push(w);
      else bad(line, `"${w}" is neither a program name, "*", ":libraries" nor an absolute /path`);
    }
    if (entry.librariesOnly && entry.programs.length) bad(line, `":libraries" takes no programs (files are fine)`);
    if (!entry.librariesOnly && entry.programs.length === 0) entry.programs.push('*');
    packages.push(entry);
  });
  for (const x of exclude) {
    const p = packages.find((e) => e.name === x);
    if (p) bad(p.line, `package "${x}" is both listed and excluded (!${x})`);
  }
  if (!kernel) problems.push({ severity: 'error', code: 'FERRY_E_INITRD_SPEC', message: 'no "kernel PACKAGE" line' });
  if (problems.length) throw new ValidationError('FERRY_E_INITRD_SPEC', `package list ${file}`, problems, file);
  return { kernel: kernel!, packages, exclude, hollow };
}

/** A driver set: module names and module-tree directories (ending in "/"). */
export interface DriverSet {
  name: string;
  modules: string[];
  dirs: string[];
}

/**
 * Parse a driver set; `@NAME` lines include another set through `load`.
 * Module names are compared with "-" and "_" alike, as modprobe does.
 */
export function parseDriverSet(name: string, load: (name: string) => string | undefined, stack: string[] = []): DriverSet {
  const file = `initrd/drivers/${name}.txt`;
  const text = load(name);
  if (text === undefined) {
    throw new ValidationError('FERRY_E_INITRD_SPEC', `driver set "${name}"`, [
      { severity: 'error', code: 'FERRY_E_INITRD_SPEC', message: `there is no driver set "${name}" (${file})`, hint: 'use "virtual" or "generic", or add the file' },
    ]);
  }
  const problems: Problem[] = [];
  const modules = new Set<string>();
  const dirs = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const w = raw.replace(/#.*/, '').trim();
    if (!w) return;
    const line = i + 1;
    if (w.startsWith('@')) {
      const inc = w.slice(1);
      if ([...stack, name].includes(inc)) {
        problems.push({ severity: 'error', code: 'FERRY_E_INITRD_SPEC', line, message: `"@${inc}" includes itself (through ${[...stack, name].join(' → ')})` });
        return;
      }
      const sub = parseDriverSet(inc, load, [...stack, name]);
      sub.modules.forEach((m) => modules.add(m));
      sub.dirs.forEach((d) => dirs.add(d));
    } else if (/^kernel\/[A-Za-z0-9_./-]+\/$/.test(w) && !w.includes('..')) {
      dirs.add(w);
    } else if (/^[A-Za-z0-9_-]+$/.test(w)) {
      modules.add(moduleKey(w));
    } else {
      problems.push({ severity: 'error', code: 'FERRY_E_INITRD_SPEC', line, message: `"${w}" is neither a module name nor a directory "kernel/…/"` });
    }
  });
  if (problems.length) throw new ValidationError('FERRY_E_INITRD_SPEC', `driver set "${name}"`, problems, file);
  return { name, modules: [...modules].sort(), dirs: [...dirs].sort() };
}

/** modprobe treats "-" and "_" in module names alike. */
export function moduleKey(name: string): string {
  return name.replace(/-/g, '_');
}
