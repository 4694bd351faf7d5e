/**
 * A guest is one QEMU process: firmware SeaBIOS or OVMF, disks on a chosen bus, user-mode
 * networking whose TFTP/boot file point at a directory on the host (iPXE then chains to the
 * Ferry server, which the guest reaches as 10.0.2.2), or a direct kernel+initrd boot. The
 * serial console is QEMU's stdio (a pipe we drive): everything is appended to a log file and
 * kept in memory for `waitFor`, and `exec` runs a command in a shell on the console and returns
 * its output and exit status through a marker.
 *
 * Every guest works in its own directory (disks, OVMF variables, console log). When a test
 * fails, or a guest is not closed cleanly, that directory is kept and its path printed.
 */
import { StringDecoder } from 'node:string_decoder';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, promises as fsp, readFileSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryError } from '../../common/errors.js';
import { run, spawnTool, type Spawned } from '../../common/run.js';
import { OVMF_VARS, qemuArgv, randomMac, type DiskBus, type GuestOptions } from './qemu.js';

export interface WaitOpts {
  timeoutMs: number;
  /** What is awaited, in words; named in the error. */
  what: string;
  /** Look only at console output after this offset (default: from the start, or from `mark()`). */
  from?: number;
  /** Fail at once when this appears (default: a kernel panic); null never fails early. */
  failOn?: RegExp | null;
}

/** A guest whose kernel panicked will not get anywhere: waits fail at once. */
export const PANIC = /Kernel panic - not syncing/;

export interface ExecResult {
  output: string;
  status: number;
}

/** The kernel's USER_HZ, the unit of /proc/PID/stat times (100 on Linux x86 and arm). */
const CLOCK_TICKS = 100;

function stripAnsi(s: string): string {
  // Firmware and systemd draw with escape sequences; matching works on the plain text.
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1bc/g, '').replace(/\r/g, '');
}

export class Guest {
  readonly name: string;
  readonly dir: string;
  readonly logFile: string;
  readonly argv: string[];
  readonly accel: 'tcg' | 'kvm';
  readonly disks: { file: string; format: string; bus: DiskBus; serial: string }[];
  readonly mac?: string;
  private proc: Spawned;
  private text = '';
  private log: WriteStream;
  private markAt = 0;
  private exited?: { code: number | null; signal: string | null };
  private exitPromise: Promise<{ code: number | null; signal: string | null }>;
  private waiters = new Set<() => void>();
  private closed = false;
  readonly startedAt = Date.now();
  private lastOutputAt = Date.now();

  constructor(init: { name: string; dir: string; argv: string[]; accel: 'tcg' | 'kvm'; disks: Guest['disks']; mac?: string }) {
    this.name = init.name;
    this.dir = init.dir;
    this.argv = init.argv;
    this.accel = init.accel;
    this.disks = init.disks;
    this.mac = init.mac;
    this.logFile = join(this.dir, 'console.log');
    // console.log is QEMU's raw copy of the serial line; harness.log has the argv, QEMU's stderr and its exit.
    this.log = createWriteStream(join(this.dir, 'harness.log'));
    this.log.write(`$ ${this.argv.join(' ')}\n`);
    // QEMU dies with the test process, even when vitest is killed: no orphaned guests.
    this.proc = spawnTool(['setpriv', '--pdeathsig', 'KILL', '--', ...this.argv], { quiet: true });
    // One decoder for the whole stream: a UTF-8 character split across two reads must not
    // turn into replacement characters (it did, and failed a comparison of fstab text).
    const decoder = new StringDecoder('utf8');
    this.proc.child.stdout!.on('data', (b: Buffer) => this.onOutput(decoder.write(b)));
    this.proc.child.stderr!.on('data', (b: Buffer) => this.log.write(`[qemu stderr] ${b.toString('utf8')}`));
    this.exitPromise = new Promise((resolve) => {
      this.proc.child.on('close', (code, signal) => {
        this.exited = { code, signal };
        this.log.write(`\n[harness] qemu exited code=${code} signal=${signal}\n`);
        resolve(this.exited);
        this.wake();
      });
    });
  }

  private onOutput(s: string): void {
    this.text += stripAnsi(s);
    this.lastOutputAt = Date.now();
    // Keep memory bounded on chatty guests; waitFor offsets are relative to what is kept.
    if (this.text.length > 8 * 1024 * 1024) {
      const cut = this.text.length - 4 * 1024 * 1024;
      this.text = this.text.slice(cut);
      this.markAt = Math.max(0, this.markAt - cut);
    }
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** The console text seen so far (escape sequences and CRs removed). */
  get console(): string {
    return this.text;
  }

  get running(): boolean {
    return !this.exited;
  }

  /** Later waits look only at output after this point; returns the offset. */
  mark(): number {
    this.markAt = this.text.length;
    return this.markAt;
  }

  tail(chars = 3000): string {
    return this.text.slice(-chars);
  }

  /** Type text on the serial console. */
  send(text: string): void {
    if (this.exited) throw new FerryError('FERRY_E_TIMEOUT', `guest ${this.name} has exited; cannot send ${JSON.stringify(text.slice(0, 60))}`);
    this.proc.child.stdin!.write(text);
  }

  /**
   * CPU seconds QEMU has used so far (user + system, from /proc), or undefined once it has
   * exited. Compared across a wait it tells a busy guest (slow under emulation, or spinning)
   * from an idle one (halted, waiting for something that never comes).
   */
  cpuSeconds(): number | undefined {
    const pid = this.proc.child.pid;
    if (!pid || this.exited) return undefined;
    try {
      // setpriv execs QEMU, so the child's pid is QEMU's. Fields after the ")" of the name:
      // state is the 1st, utime the 12th and stime the 13th (fields 14 and 15 of proc(5)).
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
    } catch {
      return undefined;
    }
  }

  /** Wait until the console output (after the mark) matches; returns the match. */
  waitFor(re: RegExp, opts: WaitOpts): Promise<RegExpMatchArray> {
    const from = opts.from ?? this.markAt;
    const cpuAtStart = this.cpuSeconds();
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const m = this.text.slice(from).match(re);
        if (m) {
          finish();
          resolve(m);
          return true;
        }
        const failOn = opts.failOn === undefined ? PANIC : opts.failOn;
        if (failOn && failOn.test(this.text.slice(from))) {
          finish();
          reject(this.failure(`the console of guest ${this.name} shows ${failOn} while waiting for ${opts.what} (${re})`, opts));
          return true;
        }
        if (this.exited) {
          finish();
          reject(this.failure(`guest ${this.name} exited (code ${this.exited.code}, signal ${this.exited.signal}) while waiting for ${opts.what} (${re})`, opts));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        finish();
        reject(this.failure(`gave up after ${opts.timeoutMs} ms waiting for ${opts.what} (${re}) on the console of guest ${this.name}; ${this.activity(cpuAtStart, opts.timeoutMs)}`, opts));
      }, opts.timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      const waiter = () => void check();
      this.waiters.add(waiter);
      check();
    });
  }

  /** In words: how busy QEMU was during a wait that gave up, and how long the console was silent. */
  private activity(cpuAtStart: number | undefined, waitedMs: number): string {
    const silent = `the console has been silent for ${((Date.now() - this.lastOutputAt) / 1000).toFixed(0)} s`;
    const now = this.cpuSeconds();
    if (now === undefined || cpuAtStart === undefined) return silent;
    const used = now - cpuAtStart;
    const share = used / (waitedMs / 1000);
    const verdict = share > 0.5 ? 'the guest was running (slow, or spinning)' : share < 0.1 ? 'the guest was mostly idle (halted or waiting)' : 'the guest was partly busy';
    return `${silent}; QEMU used ${used.toFixed(0)} s of CPU in the ${(waitedMs / 1000).toFixed(0)} s wait: ${verdict}`;
  }

  private failure(message: string, opts: WaitOpts): FerryError {
    return new FerryError('FERRY_E_TIMEOUT', `${message}\n--- console tail (${this.dir}) ---\n${this.tail(2500)}\n---`, {
      details: { what: opts.what, timeoutMs: opts.timeoutMs, guestDir: this.dir },
      hint: `the guest's files (console.log, harness.log, disks) are in ${this.dir}`,
    });
  }

  /**
   * Run a command in the shell on the serial console; returns its output and exit status.
   * The markers are split in the typed line so the terminal's echo of it cannot match.
   */
  async exec(cmd: string, opts: { timeoutMs?: number } = {}): Promise<ExecResult> {
    const id = randomBytes(4).toString('hex');
    const from = this.text.length;
    this.send(`echo "FERRY""B${id}"; ${cmd}; echo "FERRY""E${id}=$?"\n`);
    const m = await this.waitFor(new RegExp(`FERRYB${id}\\n([\\s\\S]*?)FERRYE${id}=(\\d+)`), {
      timeoutMs: opts.timeoutMs ?? 60_000,
      what: `the command "${cmd}" to finish`,
      from,
    });
    return { output: m[1], status: Number(m[2]) };
  }

  /** exec that throws when the command fails. */
  async sh(cmd: string, opts: { timeoutMs?: number } = {}): Promise<string> {
    const r = await this.exec(cmd, opts);
    if (r.status !== 0) {
      throw new FerryError('FERRY_E_COMMAND_FAILED', `in guest ${this.name}: "${cmd}" exited with ${r.status}\n${r.output}`, { details: { guestDir: this.dir } });
    }
    return r.output;
  }

  /** Wait for QEMU to exit (with a deadline). */
  async wait(opts: { timeoutMs: number; what?: string } = { timeoutMs: 60_000 }): Promise<{ code: number | null; signal: string | null }> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(this.failure(`gave up after ${opts.timeoutMs} ms waiting for ${opts.what ?? 'the guest to power off'}`, { timeoutMs: opts.timeoutMs, what: opts.what ?? 'QEMU to exit' })),
        opts.timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exitPromise, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stop QEMU now (like pulling the plug). */
  async kill(): Promise<void> {
    if (!this.exited) this.proc.child.kill('SIGKILL');
    await this.exitPromise;
  }

  /**
   * End the guest. Its directory is removed when `keep` is false, else kept and its path
   * printed so that the console log and disk images can be inspected.
   */
  async close(opts: { keep?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.kill();
    await new Promise<void>((r) => this.log.end(r));
    if (opts.keep) {
      process.stderr.write(`[vm harness] kept guest ${this.name}: ${this.dir} (console.log, harness.log, disks)\n`);
    } else {
      await fsp.rm(this.dir, { recursive: true, force: true });
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

/** Create a disk image file of the given size. */
export async function createDisk(file: string, size: string | number, format: 'qcow2' | 'raw' = 'qcow2'): Promise<void> {
  await run(['qemu-img', 'create', '-q', '-f', format, file, String(size)], { quiet: true });
}

/**
 * Start a guest under the given acceleration (harness.ts `startGuest` chooses it). Disks
 * without a file are created in the guest's own directory.
 */
export async function launchGuest(opts: GuestOptions, accel: 'tcg' | 'kvm'): Promise<Guest> {
  const base = opts.baseDir ?? tmpdir();
  mkdirSync(base, { recursive: true });
  const dir = await fsp.mkdtemp(join(base, `ferry-vm-${opts.name.replace(/[^A-Za-z0-9_.-]/g, '_')}-`));
  const disks: Guest['disks'] = [];
  for (const [i, d] of (opts.disks ?? []).entries()) {
    const format = d.format ?? 'qcow2';
    const file = d.file ?? join(dir, `disk${i}.${format}`);
    if (!existsSync(file)) await createDisk(file, d.size ?? '4G', format);
    disks.push({ file, format, bus: d.bus ?? 'virtio', serial: d.serial ?? `FERRY${i}${randomBytes(3).toString('hex')}` });
  }
  let varsFile: string | undefined;
  if ((opts.firmware ?? 'bios') === 'bios') await fsp.writeFile(join(dir, 'sercon-port'), Buffer.from([0xf8, 0x03]));
  if (opts.firmware === 'uefi') {
    // Each UEFI guest writes its own boot entries: a private copy of the variable store.
    varsFile = join(dir, 'OVMF_VARS.fd');
    await fsp.copyFile(OVMF_VARS, varsFile);
  }
  const net = opts.net ? { ...opts.net, mac: opts.net.mac ?? randomMac() } : opts.net;
  const o = { ...opts, net };
  const planned = qemuArgv(o, { accel, dir, disks, varsFile });
  // A tap opens only from its own namespace (`ip netns exec` execs QEMU in place: same pid).
  const argv = net && net.tap ? ['ip', 'netns', 'exec', net.tap.netns, ...planned] : planned;
  return new Guest({ name: opts.name, dir, argv, accel, disks, mac: net ? net.mac : undefined });
}

/** sha256 of a file's bytes (to prove a disk image was not touched). */
export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 4 * 1024 * 1024 })) h.update(chunk as Buffer);
  return h.digest('hex');
}
