/** Loop devices and checks shared by the layout integration tests (root only). */
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { run } from '../../common/run.js';

export const ROOT = join(import.meta.dirname, '..', '..');

export interface Loop {
  file: string;
  dev: string;
}

/** Machine-wide resources this test file made; cleaned up in afterEach. */
export class Scratch {
  dir = mkdtempSync(join(tmpdir(), 'ferry-layout-'));
  loops: Loop[] = [];
  roots: string[] = [];

  async loop(bytes: number, sectorSize = 512): Promise<Loop> {
    const file = join(this.dir, `disk${this.loops.length}.img`);
    await run(['truncate', '-s', String(bytes), file]);
    const args = ['losetup', '-f', '--show', '-P', ...(sectorSize !== 512 ? ['--sector-size', String(sectorSize)] : []), file];
    const dev = (await run(args)).stdout.trim();
    const l = { file, dev };
    this.loops.push(l);
    return l;
  }

  root(): string {
    const r = mkdtempSync(join(this.dir, 'root-'));
    this.roots.push(r);
    return r;
  }

  async cleanup(): Promise<void> {
    // Unmount deepest first whatever the tests left mounted under our roots.
    const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1]).filter((m) => m && m.startsWith(this.dir));
    for (const m of mounts.sort((a, b) => b.length - a.length)) await run(['umount', '-l', m]).catch(() => {});
    for (const l of this.loops) await run(['losetup', '-d', l.dev]).catch(() => {});
    this.loops = [];
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file).on('data', (b) => h.update(b)).on('error', reject).on('end', () => resolve(h.digest('hex')));
  });
}

/** Run the bundled CLI the way an operator does. */
export function ferry(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(join(ROOT, 'bin', 'ferry'), args, { encoding: 'utf8', env: { ...process.env, FERRY_LOG_LEVEL: 'warn' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export async function blkid(dev: string): Promise<Record<string, string>> {
  const r = await run(['blkid', '-p', '-o', 'export', dev], { okCodes: [0, 2] });
  return Object.fromEntries(r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** Partitions as the kernel sees them: start and size in bytes from sysfs. */
export function kernelPartition(dev: string): { start: number; size: number } {
  const base = `/sys/class/block/${dev.split('/').pop()}`;
  return { start: Number(readFileSync(`${base}/start`, 'utf8')) * 512, size: Number(readFileSync(`${base}/size`, 'utf8')) * 512 };
}
