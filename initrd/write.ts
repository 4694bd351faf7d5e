/**
 * Apply an archive plan: the kernel beside it, the cpio archive through zstd into a
 * temporary file renamed when complete, the manifest (what is in it and why), and
 * optionally initrd.img pointing at it.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, createWriteStream, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { spawnTool } from '../common/run.js';
import { writeCpio } from './cpio.js';
import type { ArchivePlan } from './plan.js';

export interface WriteOptions {
  outDir: string;
  drivers: string;
  kver: string;
  /** The kernel image to copy to OUT/vmlinuz. */
  vmlinuz: string;
  /** zstd level. */
  level: number;
  /** mtime of every entry (SOURCE_DATE_EPOCH). */
  epoch: number;
  /** How many kernel modules it carries (for the manifest). */
  modules: number;
  /** Also point initrd.img at this build. */
  makeDefault: boolean;
}

export interface Written {
  vmlinuz: string;
  initrd: string;
  manifest: string;
  bytes: number;
  uncompressedBytes: number;
  sha256: string;
}

/** Temporary files are named `*.tmp-PID` (the caller removes them on failure). */
export async function writeArchive(plan: ArchivePlan, o: WriteOptions): Promise<Written> {
  mkdirSync(o.outDir, { recursive: true });
  const vmlinuz = join(o.outDir, 'vmlinuz');
  copyFileSync(o.vmlinuz, vmlinuz + '.tmp');
  renameSync(vmlinuz + '.tmp', vmlinuz);
  const out = join(o.outDir, `initrd-${o.drivers}.img`);
  const tmp = `${out}.tmp-${process.pid}`;
  const file = createWriteStream(tmp);
  const z = spawnTool(['zstd', '-q', `-${o.level}`, '-T0', '-c'], { timeoutMs: 1_800_000 });
  z.child.stdout!.pipe(file);
  const hash = createHash('sha256');
  const uncompressed = await writeCpio(plan.entries, {
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
  const manifest = join(o.outDir, `initrd-${o.drivers}.manifest`);
  const sorted = plan.entries.map((e) => e.path).sort();
  writeFileSync(
    manifest,
    [
      `# Ferry boot environment: drivers ${o.drivers}, kernel ${o.kver}, SOURCE_DATE_EPOCH ${o.epoch}`,
      `# cpio sha256 ${hash.digest('hex')}, ${uncompressed} bytes; ${o.modules} modules`,
      '# packages',
      ...plan.packages.map((l) => `package ${l}`),
      '# entries: path origin',
      ...sorted.map((p) => `${p} ${plan.origin.get(p)}`),
      '',
    ].join('\n'),
  );
  return {
    vmlinuz,
    initrd: out,
    manifest,
    bytes: statSync(out).size,
    uncompressedBytes: uncompressed,
    sha256: createHash('sha256').update(readFileSync(out)).digest('hex'),
  };
}
