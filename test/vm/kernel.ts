/**
 * Debian's current kernel for the vm tier's own small guests (the harness test, the KVM
 * probe): downloaded once with apt and extracted into the cache.
 */
import { existsSync, mkdirSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../../common/errors.js';
import { run } from '../../common/run.js';

export const CACHE_DIR = join(process.env.FERRY_CACHE || '/var/cache/ferry', 'e2e');

export interface DebianKernel {
  version: string;
  vmlinuz: string;
  /** The extracted tree: ROOT/lib/modules/VERSION with modules.dep. */
  root: string;
}

/** Debian's current kernel package, downloaded once and extracted into the cache. */
export async function ensureDebianKernel(): Promise<DebianKernel> {
  const kdir = join(CACHE_DIR, 'kernel');
  mkdirSync(kdir, { recursive: true });
  const dep = await run(['apt-cache', 'depends', 'linux-image-amd64'], { quiet: true });
  const pkg = dep.stdout.match(/Depends:\s*(linux-image-[0-9][^\s]*-amd64)/)?.[1];
  if (!pkg) throw new FerryError('FERRY_E_TOOL_MISSING', `apt-cache depends linux-image-amd64 named no kernel package:\n${dep.stdout}`, { hint: 'run apt-get update' });
  const version = pkg.replace(/^linux-image-/, '');
  const root = join(kdir, version);
  const vmlinuz = join(root, 'boot', `vmlinuz-${version}`);
  const depFile = join(root, 'lib', 'modules', version, 'modules.dep');
  if (existsSync(vmlinuz) && existsSync(depFile)) return { version, vmlinuz, root };
  // vm test files run two at a time, each in its own process: download and extract into
  // per-process names and rename into place, so two first runs never see each other's halves.
  let deb = (await fsp.readdir(kdir)).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (!deb) {
    const dl = join(kdir, `download.tmp-${process.pid}`);
    await fsp.rm(dl, { recursive: true, force: true });
    mkdirSync(dl);
    await run(['apt-get', 'download', pkg], { cwd: dl, timeoutMs: 600_000 });
    deb = (await fsp.readdir(dl)).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
    if (!deb) throw new FerryError('FERRY_E_TOOL_MISSING', `apt-get download ${pkg} left no .deb in ${dl}`);
    await fsp.rename(join(dl, deb), join(kdir, deb));
    await fsp.rm(dl, { recursive: true, force: true });
  }
  const tmp = `${root}.tmp-${process.pid}`;
  await fsp.rm(tmp, { recursive: true, force: true });
  await run(['dpkg-deb', '-x', join(kdir, deb), tmp], { timeoutMs: 600_000 });
  await run(['depmod', '-b', tmp, version], { timeoutMs: 300_000 });
  if (existsSync(vmlinuz) && existsSync(depFile)) {
    // Another test process finished first; its tree may be in use: keep it.
    await fsp.rm(tmp, { recursive: true, force: true });
  } else {
    await fsp.rm(root, { recursive: true, force: true });
    await fsp.rename(tmp, root);
  }
  return { version, vmlinuz, root };
}
