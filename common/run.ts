/**
 * The one command runner. Every external program Ferry runs goes through here:
 * argv arrays (never a shell string), LC_ALL=C so output parses the same everywhere,
 * a log line when a command starts and when it ends, and on failure a FerryError
 * that carries the argv, the exit code and the tail of stdout and stderr.
 *
 * Tool paths come from one table that tests and the boot environment can override
 * (`setTools`, or FERRY_TOOL_<NAME>=path in the environment).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { FerryError } from './errors.js';
import { log } from './log.js';

const overrides = new Map<string, string>();

/** Point a tool name (`parted`, `mkfs.ext4`) at a path. */
export function setTools(table: Record<string, string>): void {
  for (const [k, v] of Object.entries(table)) overrides.set(k, v);
}

export function resolveTool(name: string): string {
  const o = overrides.get(name);
  if (o) return o;
  const env = process.env['FERRY_TOOL_' + name.toUpperCase().replace(/[^A-Z0-9]/g, '_')];
  return env || name;
}

/**
 * Every program Ferry runs, with the Debian package that provides it: named in the error when
 * a tool is missing, and checked by test/unit/tools.test.ts (every tool the code runs is here;
 * every tool the installer runs is in the boot environment, initrd/packages.txt).
 *
 * `by` says who runs it: the installer (in the boot environment, and `ferry install` on a
 * host), the server side (`ferry serve`, image commands), or the builders and tests.
 * `bootEnv` names the boot environment's provider when it is not `package` (busybox applets).
 * Programs run inside an installed image (grub-install, update-initramfs, efibootmgr, the
 * customization scripts) are the image's own and not listed.
 */
export interface Tool {
  package: string;
  by: readonly ('installer' | 'server' | 'build')[];
  bootEnv?: string;
}

const I = ['installer'] as const;
const IS = ['installer', 'server'] as const;
const S = ['server'] as const;
const B = ['build'] as const;

export const TOOLS: Readonly<Record<string, Tool>> = {
  // disks: discovery, partitions, RAID, LVM, file systems, mounts (installer/disk, layout/)
  lsblk: { package: 'util-linux', by: I }, blkid: { package: 'util-linux', by: I }, wipefs: { package: 'util-linux', by: I },
  partx: { package: 'util-linux', by: I }, mkswap: { package: 'util-linux', by: I },
  parted: { package: 'parted', by: I }, sfdisk: { package: 'fdisk', by: I },
  modprobe: { package: 'kmod', by: I },
  mdadm: { package: 'mdadm', by: I },
  pvcreate: { package: 'lvm2', by: I }, vgcreate: { package: 'lvm2', by: I }, lvcreate: { package: 'lvm2', by: I },
  vgchange: { package: 'lvm2', by: I }, lvchange: { package: 'lvm2', by: I },
  pvs: { package: 'lvm2', by: I }, vgs: { package: 'lvm2', by: I }, lvs: { package: 'lvm2', by: I },
  'mkfs.ext2': { package: 'e2fsprogs', by: I }, 'mkfs.ext3': { package: 'e2fsprogs', by: I }, 'mkfs.ext4': { package: 'e2fsprogs', by: I },
  'mkfs.xfs': { package: 'xfsprogs', by: I }, 'mkfs.btrfs': { package: 'btrfs-progs', by: I }, 'mkfs.fat': { package: 'dosfstools', by: I },
  'mkfs.jfs': { package: 'jfsutils', by: I }, 'mkfs.reiserfs': { package: 'reiserfsprogs', by: I },
  mount: { package: 'mount', by: I }, umount: { package: 'mount', by: I },
  // hardware inventory (installer/inventory/collect.ts)
  dmidecode: { package: 'dmidecode', by: I },
  // layers (layers/): decompression, xattrs, device nodes
  zstd: { package: 'zstd', by: [...IS, 'build'] }, setfattr: { package: 'attr', by: IS }, getfattr: { package: 'attr', by: S },
  gzip: { package: 'gzip', by: S }, rsync: { package: 'rsync', by: S },
  mknod: { package: 'coreutils', by: IS, bootEnv: 'busybox-static' },
  // the target and the end of an install (installer/chroot.ts, stages/finish.ts, commands/run.ts)
  chroot: { package: 'coreutils', by: I, bootEnv: 'busybox-static' }, sync: { package: 'coreutils', by: I, bootEnv: 'busybox-static' },
  // the end of an install from a CD (installer/commands/run.ts): the CDROMEJECT ioctl
  eject: { package: 'eject', by: I },
  reboot: { package: 'systemd-sysv', by: I, bootEnv: 'busybox-static' }, poweroff: { package: 'systemd-sysv', by: I, bootEnv: 'busybox-static' },
  // multicast fan-out (server/multicast, installer/transport/multicast.ts, common/netif.ts)
  'udp-sender': { package: 'udpcast', by: S }, 'udp-receiver': { package: 'udpcast', by: I },
  // BitTorrent fan-out (installer/transport/torrent.ts)
  aria2c: { package: 'aria2', by: IS },
  ip: { package: 'iproute2', by: IS, bootEnv: 'busybox-static' },
  // power drivers (server/power/ipmi.ts); the BMC simulator its test drives
  ipmitool: { package: 'ipmitool', by: S }, ipmi_sim: { package: 'openipmi', by: B },
  // building the boot environment (initrd/)
  'apt-get': { package: 'apt', by: B }, 'apt-cache': { package: 'apt', by: B }, 'dpkg-deb': { package: 'dpkg', by: B },
  depmod: { package: 'kmod', by: B }, busybox: { package: 'busybox-static', by: B },
  // restore media (server/media): the ISO, GRUB's EFI binary, the FAT EFI image without root or vfat
  xorriso: { package: 'xorriso', by: S }, 'grub-mkimage': { package: 'grub-common', by: S },
  mformat: { package: 'mtools', by: S }, mmd: { package: 'mtools', by: S }, mcopy: { package: 'mtools', by: S },
  // tests and scripts
  // SSH (issue 15): host keys and sshd of the tests' namespace nodes, ssh in the capture benchmark
  'ssh-keygen': { package: 'openssh-client', by: B }, ssh: { package: 'openssh-client', by: B }, '/usr/sbin/sshd': { package: 'openssh-server', by: B },
  losetup: { package: 'mount', by: B }, tar: { package: 'tar', by: B }, 'qemu-system-x86_64': { package: 'qemu-system-x86', by: B },
  dnsmasq: { package: 'dnsmasq-base', by: B },
};

/**
 * Where a tool would run from: its override (setTools, FERRY_TOOL_<NAME>) or the first
 * executable file of that name on PATH (`env` to look up another PATH); undefined when there is
 * none, so a check can name every missing tool before any is run.
 */
export function findTool(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const p = resolveTool(name);
  const executable = (f: string) => {
    try {
      accessSync(f, fsConstants.X_OK);
      return statSync(f).isFile();
    } catch {
      return false;
    }
  };
  if (p.includes('/')) return executable(p) ? p : undefined;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const f = join(dir, p);
    if (executable(f)) return f;
  }
  return undefined;
}

/** Which Debian package provides a tool, by its name or path. */
export function packageOf(tool: string): string | undefined {
  return (TOOLS[tool] ?? TOOLS[tool.split('/').pop()!])?.package;
}

let guard: ((argv: string[]) => void) | undefined = () => {
  // The unit tier is pure: no processes. The vitest unit project sets this variable.
  if (process.env.FERRY_TEST_TIER === 'unit') {
    throw new FerryError('FERRY_E_RUNNER_FORBIDDEN', 'the command runner was called in the unit test tier', {
      hint: 'unit tests must test pure functions; move this test to test/integration',
    });
  }
};

/** Replace the guard that may refuse to run commands (tests use this). */
export function setRunnerGuard(g: ((argv: string[]) => void) | undefined): void {
  guard = g;
}

export interface RunOptions {
  /** Data written to the command's standard input. */
  input?: string | Buffer;
  cwd?: string;
  /** Added to the environment; LC_ALL=C is always set. */
  env?: Record<string, string | undefined>;
  /** Kill the command after this long and fail with FERRY_E_COMMAND_TIMEOUT. */
  timeoutMs?: number;
  /** Exit codes that are not failures (default: only 0). */
  okCodes?: number[];
  /** Cap on captured output per stream; the tail is kept (default 64 MiB). */
  maxBuffer?: number;
  /** Log start/end at debug instead of info (for chatty probes such as lsblk). */
  quiet?: boolean;
}

export interface RunResult {
  argv: string[];
  code: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

const TAIL_BYTES = 4096;

export function tail(s: string, bytes = TAIL_BYTES): string {
  return s.length <= bytes ? s : '…' + s.slice(s.length - bytes);
}

class Capture {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private max: number) {}
  push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
    while (this.size > this.max && this.chunks.length > 1) this.size -= this.chunks.shift()!.length;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

function prepare(argv: string[], opts: RunOptions) {
  if (argv.length === 0) throw new FerryError('FERRY_E_INTERNAL', 'empty argv given to the command runner');
  guard?.(argv);
  const full = [resolveTool(argv[0]), ...argv.slice(1)];
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env, LC_ALL: 'C', LANG: 'C' };
  return { full, env };
}

function failure(argv: string[], code: number | null, signal: string | null, stdout: string, stderr: string, timedOut: boolean): FerryError {
  const what = timedOut ? 'timed out' : signal ? `was killed by ${signal}` : `exited with code ${code}`;
  const errTail = tail(stderr.trim(), 1500);
  return new FerryError(timedOut ? 'FERRY_E_COMMAND_TIMEOUT' : 'FERRY_E_COMMAND_FAILED', `command ${what}: ${argv.join(' ')}${errTail ? '\n' + errTail : ''}`, {
    details: { argv, exitCode: code, signal, stdoutTail: tail(stdout), stderrTail: tail(stderr) },
    hint: timedOut ? 'the command did not finish in time; look at the device or service it was waiting for' : 'read the command\'s own error output above; it names the cause',
  });
}

function spawnError(argv: string[], e: NodeJS.ErrnoException): FerryError {
  if (e.code === 'ENOENT') {
    const pkg = packageOf(argv[0]);
    return new FerryError('FERRY_E_TOOL_MISSING', `the program "${argv[0]}" was not found`, {
      details: { argv, tool: argv[0], package: pkg },
      hint: pkg ? `install the Debian package "${pkg}" (apt-get install ${pkg}) or set FERRY_TOOL_${argv[0].toUpperCase().replace(/[^A-Z0-9]/g, '_')}` : 'install it, or point Ferry at it with FERRY_TOOL_<NAME>=/path',
    });
  }
  return new FerryError('FERRY_E_COMMAND_FAILED', `could not start ${argv[0]}: ${e.message}`, { details: { argv }, cause: e });
}

/**
 * How a started command ends, for run() and spawnTool() alike: killed at `timeoutMs`, a spawn
 * error (a missing program) told apart from an exit, the exit code checked against `okCodes`.
 */
function settle(child: ChildProcess, full: string[], opts: RunOptions, label: 'run' | 'spawn', stdout: () => string, stderr: () => string): Promise<RunResult> {
  const lvl = opts.quiet ? 'debug' : 'info';
  const started = Date.now();
  let timedOut = false;
  let spawnErr: NodeJS.ErrnoException | undefined;
  const timer = opts.timeoutMs
    ? setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, opts.timeoutMs)
    : undefined;
  return new Promise((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnErr = e;
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const durationMs = Date.now() - started;
      if (spawnErr) {
        log.log(lvl, `${label} failed to start`, { argv: full, error: spawnErr.message });
        return reject(spawnError(full, spawnErr));
      }
      const out = stdout();
      const err = stderr();
      log.log(lvl, `${label} done`, { argv0: full[0], code, signal, ms: durationMs });
      const ok = code !== null && (opts.okCodes ?? [0]).includes(code);
      if (!ok || timedOut) return reject(failure(full, code, signal, out, err, timedOut));
      resolve({ argv: full, code: code!, stdout: out, stderr: err, durationMs });
    });
  });
}

/** Run a command to completion and capture its output. */
export function run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  let prepared: ReturnType<typeof prepare>;
  try {
    prepared = prepare(argv, opts);
  } catch (e) {
    return Promise.reject(e);
  }
  const { full, env } = prepared;
  log.log(opts.quiet ? 'debug' : 'info', 'run', { argv: full });
  const child = spawn(full[0], full.slice(1), { cwd: opts.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
  const out = new Capture(opts.maxBuffer ?? 64 * 1024 * 1024);
  const err = new Capture(opts.maxBuffer ?? 64 * 1024 * 1024);
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  const result = settle(child, full, opts, 'run', () => out.text(), () => err.text());
  child.stdin.on('error', () => {
    /* the command may exit without reading its input; its exit code tells */
  });
  child.stdin.end(opts.input ?? '');
  return result;
}

/** What runs commands: run() itself, or a fake that records them (the unit tier). */
export type Runner = (argv: string[], opts?: RunOptions) => Promise<RunResult>;

export interface Spawned {
  child: ChildProcess;
  /** Resolves when the command exits successfully; rejects like run() does. */
  done: Promise<RunResult>;
}

/**
 * Start a command whose stdin/stdout the caller streams (pipelines such as
 * `zstd -dc | tar -x`). stderr is captured for the error; stdout is the caller's.
 */
export function spawnTool(argv: string[], opts: Omit<RunOptions, 'input'> & { stdout?: 'pipe' | 'ignore' | 'inherit' } = {}): Spawned {
  const { full, env } = prepare(argv, opts);
  log.log(opts.quiet ? 'debug' : 'info', 'spawn', { argv: full });
  const child = spawn(full[0], full.slice(1), { cwd: opts.cwd, env, stdio: ['pipe', opts.stdout ?? 'pipe', 'pipe'] });
  const err = new Capture(opts.maxBuffer ?? 1024 * 1024);
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  const done = settle(child, full, opts, 'spawn', () => '', () => err.text());
  // Avoid an unhandled rejection when the caller awaits something else first.
  done.catch(() => {});
  return { child, done };
}

/**
 * End a spawned command: SIGTERM (a daemon such as aria2 says goodbye to its peers), SIGKILL if
 * it is still there after `graceMs`; resolves when it has exited, whatever its status.
 */
export async function stopSpawned(p: Spawned, graceMs = 5000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const t = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
  await p.done.catch(() => undefined);
  clearTimeout(t);
}
