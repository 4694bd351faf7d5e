/**
 * Debian packages for the boot environment: which ones (the listed packages and their
 * Depends/Pre-Depends, minus the excluded), at which version, downloaded with
 * `apt-get download` and unpacked with `dpkg-deb -x` into a cache shared by builds.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../common/errors.js';
import { run } from '../common/run.js';

export interface AptDepends {
  /** Package → its dependency groups (alternatives, in order). */
  deps: Map<string, string[][]>;
  /** Names apt calls virtual (`<name>`). */
  virtual: Set<string>;
}

/** Parse `apt-cache depends --recurse …` output. */
export function parseAptDepends(text: string): AptDepends {
  const deps = new Map<string, string[][]>();
  const virtual = new Set<string>();
  let current: string[][] | undefined;
  let pendingAlt: string[] | undefined;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    if (!/^\s/.test(line)) {
      const name = line.trim();
      const v = name.match(/^<(.+)>$/);
      if (v) virtual.add(v[1]);
      const key = v ? v[1] : name;
      current = deps.get(key) ?? [];
      deps.set(key, current);
      pendingAlt = undefined;
      continue;
    }
    const m = line.match(/^\s*(\|)?(PreDepends|Depends):\s*(\S+)/);
    if (!m || !current) continue;
    const v = m[3].match(/^<(.+)>$/);
    const name = v ? v[1] : m[3];
    if (v) virtual.add(name);
    if (pendingAlt) pendingAlt.push(name);
    else {
      pendingAlt = [name];
      current.push(pendingAlt);
    }
    if (!m[1]) pendingAlt = undefined;
  }
  return { deps, virtual };
}

/**
 * The packages to download, sorted: the roots and, through each dependency group,
 * its first real alternative. A group naming an excluded package is skipped whole
 * (e.g. "debconf | debconf-2.0").
 */
export function packageClosure(d: AptDepends, roots: string[], exclude: string[]): string[] {
  const ex = new Set(exclude);
  const out = new Set<string>();
  const stack = [...roots];
  while (stack.length) {
    const p = stack.pop()!;
    if (out.has(p) || ex.has(p)) continue;
    out.add(p);
    for (const group of d.deps.get(p) ?? []) {
      if (group.some((g) => ex.has(g))) continue;
      const pick = group.find((g) => !d.virtual.has(g));
      if (pick) stack.push(pick);
    }
  }
  return [...out].sort();
}

export interface PackageVersion {
  name: string;
  version: string;
  /** The .deb's file name as apt-get download writes it. */
  deb: string;
  sha256: string;
  size: number;
}

/** Parse `apt-cache show --no-all-versions` stanzas. */
export function parseAptShow(text: string): PackageVersion[] {
  const out: PackageVersion[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const f = (k: string) => stanza.match(new RegExp(`^${k}: (.*)$`, 'm'))?.[1]?.trim();
    const name = f('Package');
    const version = f('Version');
    const filename = f('Filename');
    if (!name || !version || !filename) continue;
    // apt-get download names the file PACKAGE_VERSION_ARCH.deb with the epoch's ":" escaped.
    const arch = f('Architecture') ?? filename.match(/_([a-z0-9]+)\.deb$/)?.[1] ?? 'amd64';
    out.push({ name, version, deb: `${name}_${version.replace(/:/g, '%3a')}_${arch}.deb`, sha256: f('SHA256') ?? '', size: Number(f('Size') ?? 0) });
  }
  return out;
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}

export interface Fetched extends PackageVersion {
  /** The unpacked tree. */
  dir: string;
}

export class AptCache {
  readonly debs: string;
  readonly unpacked: string;
  constructor(readonly root: string) {
    this.debs = join(root, 'debs');
    this.unpacked = join(root, 'unpacked');
    mkdirSync(this.debs, { recursive: true });
    mkdirSync(this.unpacked, { recursive: true });
  }

  /** The kernel image package a metapackage (linux-image-amd64) points to. */
  async kernelPackage(meta: string): Promise<string> {
    if (/^linux-image-\d/.test(meta)) return meta;
    const r = await run(['apt-cache', 'depends', '--no-recommends', '--no-suggests', meta], { quiet: true });
    const m = r.stdout.match(/Depends:\s*(linux-image-\d\S*)/);
    if (!m) {
      throw new FerryError('FERRY_E_INITRD_PACKAGE', `"${meta}" does not depend on a kernel image package`, {
        details: { package: meta, output: r.stdout },
        hint: 'run apt-get update; check the "kernel" line of initrd/packages.txt',
      });
    }
    return m[1];
  }

  async closure(roots: string[], exclude: string[]): Promise<string[]> {
    const r = await run(
      ['apt-cache', 'depends', '--recurse', '--no-recommends', '--no-suggests', '--no-conflicts', '--no-breaks', '--no-replaces', '--no-enhances', ...roots],
      { quiet: true, timeoutMs: 120_000 },
    );
    return packageClosure(parseAptDepends(r.stdout), roots, exclude);
  }

  async versions(names: string[]): Promise<PackageVersion[]> {
    let r;
    try {
      r = await run(['apt-cache', 'show', '--no-all-versions', ...names], { quiet: true, timeoutMs: 120_000 });
    } catch (e) {
      throw new FerryError('FERRY_E_INITRD_PACKAGE', `apt does not know some of the packages: ${names.join(' ')}`, {
        cause: e,
        hint: 'run apt-get update (once), and check the names in initrd/packages.txt',
      });
    }
    const got = parseAptShow(r.stdout);
    const missing = names.filter((n) => !got.some((g) => g.name === n));
    if (missing.length) {
      throw new FerryError('FERRY_E_INITRD_PACKAGE', `apt has no installable version of: ${missing.join(' ')}`, {
        details: { missing },
        hint: 'run apt-get update, or remove or exclude (!NAME) these in initrd/packages.txt',
      });
    }
    return names.map((n) => got.find((g) => g.name === n)!);
  }

  /** Download what the cache lacks (checked against apt's SHA256), then unpack each once. */
  async fetch(pkgs: PackageVersion[]): Promise<Fetched[]> {
    const ok = async (p: PackageVersion) => {
      const f = join(this.debs, p.deb);
      return existsSync(f) && (!p.sha256 || (await sha256File(f)) === p.sha256);
    };
    const need: PackageVersion[] = [];
    for (const p of pkgs) if (!(await ok(p))) need.push(p);
    if (need.length) {
      // The sandbox user _apt cannot write into root's cache directory.
      await run(['apt-get', 'download', '-q', '-o', 'APT::Sandbox::User=root', ...need.map((p) => `${p.name}=${p.version}`)], {
        cwd: this.debs,
        timeoutMs: 900_000,
      });
      for (const p of need) {
        if (!(await ok(p))) {
          throw new FerryError('FERRY_E_INITRD_PACKAGE', `apt-get download ${p.name}=${p.version} did not leave a valid ${p.deb}`, {
            details: { package: p.name, version: p.version, dir: this.debs, present: readdirSync(this.debs).filter((f) => f.startsWith(p.name + '_')) },
            hint: 'check the network access to the Debian mirror and the free space in the cache',
          });
        }
      }
    }
    const out: Fetched[] = [];
    for (const p of pkgs) {
      const dir = join(this.unpacked, p.deb.replace(/\.deb$/, ''));
      if (!existsSync(dir)) {
        const tmp = `${dir}.tmp-${process.pid}`;
        rmSync(tmp, { recursive: true, force: true });
        await run(['dpkg-deb', '-x', join(this.debs, p.deb), tmp], { quiet: true, timeoutMs: 600_000 });
        if (/^linux-image-\d/.test(p.name)) {
          // Debian's kernel package leaves modules.dep to its postinst: build it once here.
          const version = readdirSync(join(tmp, 'lib', 'modules'))[0];
          await run(['depmod', '-b', tmp, version], { quiet: true, timeoutMs: 600_000 });
        }
        try {
          renameSync(tmp, dir);
        } catch (e) {
          // Another build unpacked the same package meanwhile: theirs is as good.
          rmSync(tmp, { recursive: true, force: true });
          if (!existsSync(dir)) throw e;
        }
      }
      out.push({ ...p, dir });
    }
    return out;
  }
}
