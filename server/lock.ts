/**
 * One server per data directory: `ferry serve` holds an flock(2) on DATA/server.lock for its
 * whole life. Node has no flock binding, so util-linux's flock(1) takes it and keeps it while its
 * child reads our pipe: when this process ends, even by SIGKILL, the pipe closes, the child
 * exits and the kernel drops the lock, so a crash never leaves a stale lock behind. The holder's
 * PID is written into the lock file for the refusal message.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../common/errors.js';

export const LOCK_FILE = 'server.lock';
/** flock's exit status when the lock is held (-E). */
const HELD = 75;

export interface DataDirLock {
  /** Give the lock up and wait until it is free for the next server. */
  release(): Promise<void>;
}

export async function lockDataDir(dir: string): Promise<DataDirLock> {
  const file = join(dir, LOCK_FILE);
  let child: ChildProcess;
  const got = await new Promise<'locked' | number | Error>((resolve) => {
    child = spawn('flock', ['--nonblock', '--conflict-exit-code', String(HELD), file, 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    child.stdout!.once('data', () => resolve('locked'));
    child.once('error', (e) => resolve(e));
    child.once('exit', (code) => resolve(code === HELD ? HELD : new Error(`flock exited with ${code}: ${err.trim()}`)));
  });
  if (got === HELD) {
    let pid = '';
    try {
      pid = readFileSync(file, 'utf8').trim();
    } catch {
      /* unreadable: say so without a PID */
    }
    throw new FerryError('FERRY_E_SERVER_RUNNING', `another ferry serve${/^[0-9]+$/.test(pid) ? ` (PID ${pid})` : ''} already uses the data directory ${dir}`, {
      details: { dataDir: dir, pid: /^[0-9]+$/.test(pid) ? Number(pid) : undefined, lock: file },
      hint: 'one server per data directory: stop the other one first, or give this one its own --data DIR',
    });
  }
  if (got !== 'locked') {
    child!.kill('SIGKILL');
    const e = got instanceof Error ? got : new Error(String(got));
    throw new FerryError('FERRY_E_TOOL_MISSING', `cannot lock the data directory ${dir} with flock: ${e.message}`, {
      details: { dataDir: dir, tool: 'flock' },
      hint: 'install util-linux (it provides flock)',
    });
  }
  writeFileSync(file, `${process.pid}\n`, { mode: 0o600 });
  // The lock must not keep the process alive by itself.
  child!.unref();
  for (const s of [child!.stdin, child!.stdout, child!.stderr]) (s as unknown as { unref?: () => void }).unref?.();
  let released: Promise<void> | undefined;
  return {
    release() {
      released ??= new Promise<void>((resolve) => {
        const c = child!;
        if (c.exitCode !== null || c.signalCode !== null) return resolve();
        const t = setTimeout(() => c.kill('SIGKILL'), 2000);
        c.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        c.stdin!.end();
      });
      return released;
    },
  };
}
