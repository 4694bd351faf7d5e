/**
 * A small busybox initrd for the vm tier's own guests (the harness test, the KVM probe):
 * enough to boot a shell on the serial console, with chosen kernel modules. Built with the
 * boot environment's own pieces: the module closure of initrd/modules.ts, staged and indexed
 * by initrd/inputs.ts, and written by initrd/cpio.ts (newc, no cpio(1), no staging tree).
 */
import { createWriteStream, promises as fsp, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { writeCpio, type CpioEntry } from '../../initrd/cpio.js';
import { busyboxApplets, readModuleIndex, stageModules } from '../../initrd/inputs.js';
import { selectModules } from '../../initrd/modules.js';
import { moduleKey } from '../../initrd/spec.js';
import type { DebianKernel } from './kernel.js';

/** The line the default init prints when its shell is ready on the console. */
export const SHELL_READY = 'FERRY-VM-SHELL-READY';

/** The host's busybox (static: it needs no libraries in the initrd). */
const BUSYBOX = '/bin/busybox';

export interface BusyboxInitrdOptions {
  kernel: DebianKernel;
  /** Where to write the initrd (newc cpio). */
  out: string;
  /** Kernel modules to carry (with their dependencies) and load at start, in order. */
  modules?: string[];
  /** Extra files: path inside the initrd → content. */
  files?: Record<string, string | Buffer>;
  /** Replace the default /init (which mounts the kernel file systems and starts a shell). */
  init?: string;
}

export function defaultInit(modules: string[]): string {
  return [
    '#!/bin/sh',
    'export PATH=/bin:/sbin:/usr/bin:/usr/sbin',
    'mount -t proc proc /proc',
    'mount -t sysfs sys /sys',
    'mount -t devtmpfs dev /dev',
    'mkdir -p /dev/pts /tmp /run && mount -t devpts devpts /dev/pts',
    ...modules.map((m) => `modprobe ${m} || echo "init: modprobe ${m} failed"`),
    `echo ${SHELL_READY}`,
    // A shell with the serial line as its controlling terminal; respawned if it exits.
    'while true; do setsid cttyhack sh; done',
    '',
  ].join('\n');
}

/** Build a small initrd from the host's busybox (plus chosen kernel modules and files). */
export async function buildBusyboxInitrd(o: BusyboxInitrdOptions): Promise<string> {
  const entries = new Map<string, CpioEntry>();
  const add = (e: CpioEntry) => {
    if (!entries.has(e.path)) entries.set(e.path, e);
  };
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'proc', 'sys', 'dev', 'tmp', 'run', 'etc', 'root']) add({ path: d, kind: 'dir', mode: 0o755 });
  add({ path: 'bin/busybox', kind: 'file', mode: 0o755, source: BUSYBOX });
  for (const a of await busyboxApplets(BUSYBOX)) add({ path: a.replace(/^\/+/, ''), kind: 'symlink', mode: 0o777, target: BUSYBOX });

  const mods = o.modules ?? [];
  const stage = await fsp.mkdtemp(join(tmpdir(), 'ferry-initrd-modules-'));
  try {
    if (mods.length) {
      const kmods = join(o.kernel.root, 'lib', 'modules', o.kernel.version);
      const sel = selectModules(readModuleIndex(kmods), { name: 'vm-harness', modules: mods.map(moduleKey), dirs: [] });
      for (const f of await stageModules(kmods, o.kernel.version, sel.paths, stage)) {
        add({ path: `lib/modules/${o.kernel.version}/${f.rel}`, kind: 'file', mode: 0o644, source: f.host });
      }
    }
    for (const [p, content] of Object.entries(o.files ?? {})) {
      entries.set(p.replace(/^\/+/, ''), { path: p.replace(/^\/+/, ''), kind: 'file', mode: 0o644, data: Buffer.from(content) });
    }
    entries.set('init', { path: 'init', kind: 'file', mode: 0o755, data: Buffer.from(o.init ?? defaultInit(mods)) });
    // Every parent directory is in the archive.
    for (const p of [...entries.keys()]) {
      for (let d = posix.dirname(p); d !== '.'; d = posix.dirname(d)) add({ path: d, kind: 'dir', mode: 0o755 });
    }
    const file = createWriteStream(o.out);
    await writeCpio([...entries.values()], {
      mtime: 0,
      content: (e) => readFileSync(e.source!),
      write: async (b) => {
        if (!file.write(b)) await once(file, 'drain');
      },
    });
    file.end();
    await once(file, 'finish');
    return o.out;
  } finally {
    await fsp.rm(stage, { recursive: true, force: true });
  }
}
