/**
 * Which kernel modules a driver set carries: the named modules and directories, with
 * their dependencies (modules.dep) and soft dependencies (modules.softdep, names or
 * aliases such as ext4's "pre: crc32c"). Pure: works on the index files' text.
 */
import { ValidationError, type Problem } from '../common/errors.js';
import { moduleKey, type DriverSet } from './spec.js';

export interface ModuleIndex {
  /** Relative path (kernel/fs/ext4/ext4.ko) → the paths it depends on. */
  deps: Map<string, string[]>;
  /** Module key (ext4, crc32c_generic) → relative path. */
  byName: Map<string, string>;
  /** Module key → names or aliases it wants loaded too. */
  softdeps: Map<string, string[]>;
  /** Exact (wildcard-free) alias → module keys. */
  aliases: Map<string, string[]>;
  /** Module keys built into the kernel. */
  builtin: Set<string>;
}

export function keyOfPath(path: string): string {
  return moduleKey(path.split('/').pop()!.replace(/\.ko(\.(xz|zst|gz))?$/, ''));
}

export function parseModuleIndex(files: { dep: string; softdep?: string; alias?: string; builtin?: string }): ModuleIndex {
  const deps = new Map<string, string[]>();
  const byName = new Map<string, string>();
  for (const line of files.dep.split('\n')) {
    const m = line.match(/^([^:]+):\s*(.*)$/);
    if (!m) continue;
    deps.set(m[1], m[2].split(/\s+/).filter(Boolean));
    byName.set(keyOfPath(m[1]), m[1]);
  }
  const softdeps = new Map<string, string[]>();
  for (const line of (files.softdep ?? '').split('\n')) {
    const w = line.trim().split(/\s+/);
    if (w[0] !== 'softdep' || !w[1]) continue;
    const names = w.slice(2).filter((x) => x !== 'pre:' && x !== 'post:');
    softdeps.set(moduleKey(w[1]), [...(softdeps.get(moduleKey(w[1])) ?? []), ...names]);
  }
  const aliases = new Map<string, string[]>();
  for (const line of (files.alias ?? '').split('\n')) {
    const w = line.trim().split(/\s+/);
    if (w[0] !== 'alias' || w.length < 3 || /[*?[]/.test(w[1])) continue;
    aliases.set(w[1], [...(aliases.get(w[1]) ?? []), moduleKey(w[2])]);
  }
  const builtin = new Set((files.builtin ?? '').split('\n').filter(Boolean).map(keyOfPath));
  return { deps, byName, softdeps, aliases, builtin };
}

/** A module name or alias → module paths ([] when built in or unknown). */
function resolveName(idx: ModuleIndex, name: string): string[] | undefined {
  const k = moduleKey(name);
  const p = idx.byName.get(k);
  if (p) return [p];
  if (idx.builtin.has(k)) return [];
  const a = idx.aliases.get(name) ?? idx.aliases.get(k);
  if (a) return a.map((m) => idx.byName.get(m)).filter((x): x is string => !!x);
  return undefined;
}

export interface ModuleSelection {
  /** Relative module paths, sorted. */
  paths: string[];
  /** Named modules that are built into the kernel (nothing to carry). */
  builtin: string[];
}

/**
 * The closure of a driver set. A named module that is neither a module nor built in
 * is an error (a typo in the set would otherwise silently drop a driver).
 */
export function selectModules(idx: ModuleIndex, set: DriverSet): ModuleSelection {
  const problems: Problem[] = [];
  const want: string[] = [];
  const builtin: string[] = [];
  for (const m of set.modules) {
    const r = resolveName(idx, m);
    if (r === undefined) problems.push({ severity: 'error', code: 'FERRY_E_INITRD_SPEC', path: `drivers/${set.name}.txt: ${m}`, message: `no kernel module or alias "${m}" in this kernel` });
    else if (r.length === 0) builtin.push(m);
    else want.push(...r);
  }
  for (const d of set.dirs) {
    const inDir = [...idx.deps.keys()].filter((p) => p.startsWith(d));
    if (inDir.length === 0) problems.push({ severity: 'error', code: 'FERRY_E_INITRD_SPEC', path: `drivers/${set.name}.txt: ${d}`, message: `no module below "${d}" in this kernel` });
    want.push(...inDir);
  }
  if (problems.length) throw new ValidationError('FERRY_E_INITRD_SPEC', `driver set "${set.name}"`, problems);
  const out = new Set<string>();
  const stack = [...want];
  while (stack.length) {
    const p = stack.pop()!;
    if (out.has(p)) continue;
    out.add(p);
    stack.push(...(idx.deps.get(p) ?? []));
    for (const s of idx.softdeps.get(keyOfPath(p)) ?? []) stack.push(...(resolveName(idx, s) ?? []));
  }
  return { paths: [...out].sort(), builtin: builtin.sort() };
}
