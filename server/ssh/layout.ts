/**
 * The disk layout of a machine captured over SSH: layout/gather.ts (the parser `ferry layout
 * capture` uses on its own machine) reading the remote's lsblk, parted (when present, else lsblk's
 * own table), blkid, /proc/mdstat, the LVM reports and fstab over the capture's connection. The
 * layout XML is stored beside the image version, as DATA/layouts/NAME@VERSION.xml, the file
 * `ferry node add --layout` takes.
 */
import { chmodSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../../common/errors.js';
import type { RunOptions, RunResult } from '../../common/run.js';
import { captureToXml } from '../../layout/capture.js';
import { gatherCapture, type CaptureSource } from '../../layout/gather.js';
import { execCollect, type SshConnection } from './connect.js';
import { formatHostPort, shellCommand, shellQuote } from './target.js';

/** The sbin directories hold blkid and the LVM tools; a non-root login's PATH may lack them. */
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const MAX_OUTPUT = 16 << 20;

/** Commands and files of the machine at the other end of `c`. */
export function sshSource(c: SshConnection): CaptureSource {
  const where = formatHostPort(c.target);
  return {
    async run(argv: string[], o: RunOptions = {}): Promise<RunResult> {
      const env = Object.entries({ LC_ALL: 'C', PATH, ...o.env }).map(([k, v]) => `${k}=${shellQuote(String(v))}`).join(' ');
      const started = Date.now();
      const r = await execCollect(c, `env ${env} ${shellCommand(argv)}`, { maxBytes: MAX_OUTPUT });
      const stdout = r.stdout.toString('utf8');
      const stderr = r.stderr.toString('utf8');
      // env(1) exits 127 when the program is not there.
      if (r.code === 127) {
        throw new FerryError('FERRY_E_TOOL_MISSING', `the program "${argv[0]}" was not found on ${where}`, {
          details: { argv, tool: argv[0], where },
          hint: `install it on ${where}, or capture with --no-layout`,
        });
      }
      if (r.code === null || !(o.okCodes ?? [0]).includes(r.code) || r.truncated) {
        throw new FerryError('FERRY_E_COMMAND_FAILED', `${argv.join(' ')} on ${where} ${r.truncated ? `printed more than ${MAX_OUTPUT} bytes` : `exited with ${r.code ?? r.signal}`}: ${stderr.trim().slice(-1500)}`, {
          details: { argv, where, exitCode: r.code, signal: r.signal, stderrTail: stderr.slice(-4000) },
          hint: "read the command's own error output above; it names the cause",
        });
      }
      return { argv, code: r.code, stdout, stderr, durationMs: Date.now() - started };
    },
    async readFile(path: string): Promise<string | undefined> {
      const r = await execCollect(c, `cat -- ${shellQuote(path)}`, { maxBytes: 1 << 20 });
      return r.code === 0 && !r.truncated ? r.stdout.toString('utf8') : undefined;
    },
  };
}

/** Layout XML of the remote machine's disks (all of them, or `disks`); mount points relative to `root`. */
export async function captureRemoteLayout(c: SshConnection, o: { disks?: string[]; root?: string }): Promise<string> {
  const input = await gatherCapture(sshSource(c), { disks: o.disks, root: o.root && o.root !== '/' ? o.root : undefined });
  return captureToXml(input).replace('<!-- Disk layout captured by ferry layout capture. -->', `<!-- Disk layout captured by ferry image capture from ${formatHostPort(c.target)}. -->`);
}

/** Where the layout captured with image NAME@VERSION is kept. */
export function layoutPathOf(dataDir: string, name: string, version: number): string {
  return join(dataDir, 'layouts', `${name}@${version}.xml`);
}

export function storeLayout(dataDir: string, name: string, version: number, xml: string): string {
  const dir = join(dataDir, 'layouts');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const file = layoutPathOf(dataDir, name, version);
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, xml, { mode: 0o600 });
  renameSync(tmp, file);
  return file;
}
