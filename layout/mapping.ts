/**
 * Layout disks → the disks at hand: by serial, WWN, by-path, model and size hints, or in order.
 */
import { formatBytes, parseSize } from '../common/units.js';
import { type DiskMatch, type DiskTarget, type Layout, type LayoutDisk } from './types.js';
import { err, type Ctx } from './plan-context.js';
import { didYouMean } from './values.js';

export function norm(s: string | undefined): string {
  return (s ?? '').trim().toLowerCase().replace(/^0x/, '');
}

export function matches(d: DiskTarget, m: LayoutDisk['match']): boolean {
  if (m.serial !== undefined && norm(d.serial) !== norm(m.serial)) return false;
  if (m.wwn !== undefined && norm(d.wwn) !== norm(m.wwn)) return false;
  if (m.model !== undefined && !norm(d.model).includes(norm(m.model))) return false;
  if (m.minSize !== undefined && d.size < m.minSize) return false;
  if (m.maxSize !== undefined && d.size > m.maxSize) return false;
  if (m.byPath !== undefined) {
    const want = m.byPath.replace(/^\/dev\/disk\/by-path\//, '');
    if (!(d.byPath ?? []).some((p) => p.replace(/^\/dev\/disk\/by-path\//, '') === want)) return false;
  }
  return true;
}

/**
 * The disk a /dev/disk/by-id or /dev/disk/by-path name stands for among `disks`, by the names
 * each carries (udev's links where they exist, computed from sysfs otherwise: the boot
 * environment has no udev); undefined when `dev` is not such a name or no disk carries it.
 */
export function diskForLinkName<T extends Pick<DiskTarget, 'byId' | 'byPath'>>(dev: string, disks: readonly T[]): T | undefined {
  const m = /^\/dev\/disk\/(by-id|by-path)\/([^/]+)$/.exec(dev);
  if (!m) return undefined;
  const strip = (s: string) => s.replace(/^\/dev\/disk\/by-(id|path)\//, '');
  return disks.find((d) => ((m[1] === 'by-id' ? d.byId : d.byPath) ?? []).some((n) => strip(n) === m[2]));
}

export const isLinkName = (dev: string): boolean => /^\/dev\/disk\/by-(id|path)\//.test(dev);

/** The hw.* properties a layout disk hint may name (issue 18; the inventory's per-disk properties). */
export const HW_DISK_KEYS = ['hw.disk.serial', 'hw.disk.wwn', 'hw.disk.model', 'hw.disk.by-path', 'hw.disk.size'] as const;

/**
 * A disk's `hw` attribute: hints written as the node's hardware properties and selections write
 * them (`hw.disk.serial=S3Z1NB0K`, `hw.disk.size>=400GB`, several separated by spaces or commas),
 * read into the same hints as `serial`, `wwn`, `model` (a substring), `by_path` and `min_size`,
 * so that the server (against the stored hw.* at arm time) and the node (against its own
 * discovery) match them with the one `matches`. `hw.disk.size=X` is both bounds.
 */
export function parseHwHints(text: string): { match: DiskMatch; problems: string[] } {
  const match: DiskMatch = {};
  const problems: string[] = [];
  for (const term of text.split(/[\s,]+/).filter(Boolean)) {
    const m = /^([A-Za-z0-9_.-]+)(>=|<=|=)(.+)$/.exec(term);
    if (!m) {
      problems.push(`"${term}" is not KEY=VALUE, KEY>=SIZE or KEY<=SIZE`);
      continue;
    }
    const [, key, op, value] = m;
    if (!(HW_DISK_KEYS as readonly string[]).includes(key)) {
      const near = didYouMean(key, HW_DISK_KEYS);
      problems.push(`${key} is not a disk property a hint can name${near ? ` (did you mean ${near}?)` : ''}; use ${HW_DISK_KEYS.join(', ')}`);
      continue;
    }
    if (key === 'hw.disk.size') {
      const sz = (() => {
        try {
          return parseSize(value, 'B');
        } catch {
          return undefined;
        }
      })();
      if (!sz || sz.kind !== 'bytes') {
        problems.push(`${term}: "${value}" is not an absolute size (such as 400GB or 1TiB)`);
        continue;
      }
      if (op !== '<=') match.minSize = Number(sz.bytes);
      if (op !== '>=') match.maxSize = Number(sz.bytes);
      continue;
    }
    if (op !== '=') {
      problems.push(`${term}: ${key} is compared with =, not ${op}`);
      continue;
    }
    const k = ({ 'hw.disk.serial': 'serial', 'hw.disk.wwn': 'wwn', 'hw.disk.model': 'model', 'hw.disk.by-path': 'byPath' } as const)[key as 'hw.disk.serial'];
    match[k] = value;
  }
  return { match, problems };
}

export function hasHints(m: LayoutDisk['match']): boolean {
  return Object.values(m).some((v) => v !== undefined);
}

/**
 * Which present disk each layout disk goes onto: the operator's --map first, then disks
 * chosen by hints (no match is an error, never a guess), then the same path, then the
 * remaining disks in the order given.
 */
export function mapDisks(layout: Layout, disks: DiskTarget[], map: Record<string, string> = {}, c?: Ctx, chosenDisks = false): Map<string, DiskTarget> {
  const ctx = c ?? { layout, seed: '', problems: [], warnings: [] };
  const out = new Map<string, DiskTarget>();
  const used = new Set<string>();
  const byPath = new Map(disks.map((d) => [d.path, d]));
  for (const [from, to] of Object.entries(map)) {
    const ld = layout.disks.find((d) => d.dev === from);
    if (!ld) {
      err(ctx, 'FERRY_E_DISK_MAP', undefined, `--map ${from}=${to}: the layout has no disk ${from} (it has ${layout.disks.map((d) => d.dev).join(', ')})`, 'map the layout\'s own disk names');
      continue;
    }
    const t = byPath.get(to);
    if (!t) {
      err(ctx, 'FERRY_E_DISK_MAP', ld.where, `--map ${from}=${to}: ${to} is not one of the disks given (${disks.map((d) => d.path).join(', ') || 'none'})`, 'name a disk that is also given with --disk');
      continue;
    }
    if (used.has(to)) {
      err(ctx, 'FERRY_E_DISK_MAP', ld.where, `--map: ${to} is mapped to two layout disks`);
      continue;
    }
    out.set(from, t);
    used.add(to);
  }
  const free = () => disks.filter((d) => !used.has(d.path));
  for (const ld of layout.disks) {
    if (out.has(ld.dev) || !hasHints(ld.match)) continue;
    const cand = free().filter((d) => matches(d, ld.match));
    if (cand.length === 0) {
      const hints = Object.entries(ld.match).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`).join(', ');
      err(ctx, 'FERRY_E_DISK_NO_MATCH', ld.where, `no disk matches the hints of layout disk ${ld.dev} (${hints}); disks available: ${free().map((d) => `${d.path} (${formatBytes(d.size)}${d.serial ? `, serial ${d.serial}` : ''}${d.model ? `, ${d.model}` : ''})`).join('; ') || 'none'}`, 'correct the hints, or choose the disk with --map');
      continue;
    }
    out.set(ld.dev, cand[0]);
    used.add(cand[0].path);
  }
  for (const ld of layout.disks) {
    if (out.has(ld.dev) || hasHints(ld.match)) continue;
    if (isLinkName(ld.dev)) {
      // A by-id or by-path name is as exact as a serial: the disk that carries it, or an error.
      const named = diskForLinkName(ld.dev, free());
      if (named) {
        out.set(ld.dev, named);
        used.add(named.path);
      } else if (!byPath.has(ld.dev)) {
        const names = (d: DiskTarget) => [...(d.byId ?? []), ...(d.byPath ?? [])].join(' ');
        err(ctx, 'FERRY_E_DISK_NO_MATCH', ld.where, `no disk is ${ld.dev}; disks available: ${free().map((d) => `${d.path} (${names(d) || 'no by-id or by-path names'})`).join('; ') || 'none'}`, 'correct the name (ls -l /dev/disk/by-id /dev/disk/by-path on the machine, or `ferry-installer inventory`), or choose the disk with --map');
        continue;
      }
    }
    const same = byPath.get(ld.dev);
    // A kernel name is a hint (names move between boots): it never chooses the boot medium.
    if (same && !used.has(same.path) && (!same.bootMedium || isLinkName(ld.dev))) {
      out.set(ld.dev, same);
      used.add(same.path);
    }
  }
  for (const ld of layout.disks) {
    if (out.has(ld.dev) || hasHints(ld.match)) continue;
    // A removable disk (the USB stick the node booted from, a card reader) is never taken in
    // order: only when named (--map, a hint, its own path) or chosen with --disk. The disk of
    // the medium the node booted from is never taken in order, whatever --disk says.
    const next = free().find((d) => !d.bootMedium && (chosenDisks || !d.removable));
    if (!next) {
      const medium = free().filter((d) => d.bootMedium).map((d) => d.path);
      const skipped = [...medium, ...free().filter((d) => d.removable && !d.bootMedium).map((d) => d.path)];
      const why = [medium.length ? `boot medium ${medium.join(', ')}` : '', skipped.length > medium.length ? `removable ${skipped.slice(medium.length).join(', ')}` : ''].filter(Boolean).join(', ');
      err(ctx, 'FERRY_E_DISK_MISSING', ld.where, `the layout needs ${layout.disks.length} disk(s) but only ${disks.length - skipped.length} ${disks.length - skipped.length === 1 ? 'is' : 'are'} available: none left for ${ld.dev}${skipped.length ? ` (${why} not used unless named)` : ''}`, medium.length ? 'to install onto the boot medium itself, name it in the layout (a serial/by_path hint or a /dev/disk/by-id name) or with --map LAYOUTDEV=DEV' : skipped.length ? 'name the removable disk with --map LAYOUTDEV=DEV or --disk, or a serial/by_path hint in the layout' : 'give another disk (--disk), or use a layout with fewer disks');
      continue;
    }
    out.set(ld.dev, next);
    used.add(next.path);
  }
  return out;
}
