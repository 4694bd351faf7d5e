/**
 * The QEMU harness of the vm test tier.
 *
 * A Guest is one QEMU process: firmware SeaBIOS or OVMF, disks on a chosen bus, user-mode
 * networking whose TFTP/boot file point at a directory on the host (iPXE then chains to the
 * Ferry server, which the guest reaches as 10.0.2.2), or a direct kernel+initrd boot. The
 * serial console is QEMU's stdio (a pipe we drive): everything is appended to a log file and
 * kept in memory for `waitFor`, and `exec` runs a command in a shell on the console and returns
 * its output and exit status through a marker.
 *
 * Every guest works in its own directory (disks, OVMF variables, console log). When a test
 * fails, or a guest is not closed cleanly, that directory is kept and its path printed.
 *
 * Acceleration: TCG unless a short KVM probe boot succeeds under a deadline (on the project's
 * machines /dev/kvm is absent or KVM guests hang, see MACHINE-NOTES). FERRY_VM_ACCEL=tcg|kvm
 * forces a choice.
 */
import { StringDecoder } from 'node:string_decoder';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, promises as fsp, readFileSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryError } from '../../common/errors.js';
import { run, spawnTool, type Spawned } from '../../common/run.js';

export const CACHE_DIR = join(process.env.FERRY_CACHE || '/var/cache/ferry', 'e2e');

export type Firmware = 'bios' | 'uefi';
export type DiskBus = 'virtio' | 'sata' | 'nvme';

export interface DiskSpec {
  /** Size of a new disk (bytes or a qemu-img size such as "4G"); ignored when `file` exists. */
  size?: string | number;
  /** Use this file instead of creating one in the guest's directory. */
  file?: string;
  format?: 'qcow2' | 'raw';
  bus?: DiskBus;
  /** Serial number the guest sees (shows up in /dev/disk/by-id). */
  serial?: string;
}

export interface NetSpec {
  mac?: string;
  /** Directory served by QEMU's built-in TFTP server. */
  tftpDir?: string;
  /** DHCP boot file name (inside tftpDir), e.g. boot.ipxe. */
  bootfile?: string;
  /** Boot from the network before the disks. */
  boot?: boolean;
}

export interface GuestOptions {
  /** Short name used in the directory name and messages. */
  name: string;
  firmware?: Firmware;
  memoryMiB?: number;
  cpus?: number;
  disks?: DiskSpec[];
  /** User-mode network with one virtio-net NIC; false for none. */
  net?: NetSpec | false;
  /** Direct kernel boot. */
  kernel?: { kernel: string; initrd?: string; append?: string };
  /**
   * Who orders the boot devices. 'qemu' (default): the NIC (when net.boot) and then the disks get
   * QEMU bootindexes, which OVMF and SeaBIOS follow whatever their own settings say. 'firmware'
   * (UEFI only): no bootindex, so OVMF boots by the BootOrder in its NVRAM variables, as real UEFI
   * firmware does, and what the installed system wrote there (efibootmgr) decides the next boot.
   */
  bootOrder?: 'qemu' | 'firmware';
  /** What a guest reboot does: reset and go on (default), or end QEMU. */
  onReboot?: 'reset' | 'exit';
  accel?: 'auto' | 'tcg' | 'kvm';
  /** Parent of the guest's directory (default: the system temp dir). */
  baseDir?: string;
  /** Extra QEMU arguments. */
  extraArgs?: string[];
}

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

/** Plan the QEMU argv for a guest: pure, so it can be read and tested without QEMU. */
export function qemuArgv(opts: GuestOptions, ctx: { accel: 'tcg' | 'kvm'; dir: string; disks: { file: string; format: string; bus: DiskBus; serial: string }[]; varsFile?: string }): string[] {
  const a: string[] = ['qemu-system-x86_64', '-name', opts.name, '-machine', 'q35', '-accel', ctx.accel];
  // -cpu max under TCG offers SSE4/AVX that Node's V8 and modern userlands expect.
  a.push('-cpu', ctx.accel === 'kvm' ? 'host' : 'max');
  a.push('-m', String(opts.memoryMiB ?? 1536), '-smp', String(opts.cpus ?? 1));
  a.push('-display', 'none', '-vga', 'none', '-monitor', 'none', '-nodefaults', '-no-user-config');
  a.push('-chardev', `stdio,id=con0,signal=off,logfile=${join(ctx.dir, 'console.log')}`, '-serial', 'chardev:con0');
  // Entropy for the guest: systemd, ssh and Node's crypto block without it.
  a.push('-device', 'virtio-rng-pci');
  if ((opts.firmware ?? 'bios') === 'bios') {
    // SeaBIOS's serial console: firmware, option ROM (iPXE) and GRUB text output also appear
    // on the serial line, where the tests read it. The file holds the port, 0x3f8, as an integer.
    a.push('-fw_cfg', `name=etc/sercon-port,file=${join(ctx.dir, 'sercon-port')}`);
  } else {
    a.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`);
    a.push('-drive', `if=pflash,format=raw,unit=1,file=${ctx.varsFile}`);
  }
  if (opts.bootOrder === 'firmware' && opts.firmware !== 'uefi') {
    throw new FerryError('FERRY_E_USAGE', `guest ${opts.name}: bootOrder 'firmware' needs UEFI firmware (SeaBIOS has no boot order of its own to follow)`);
  }
  let bootIndex = 1;
  const byQemu = opts.bootOrder !== 'firmware';
  if (opts.net) {
    const n = opts.net;
    let nd = 'user,id=n0';
    if (n.tftpDir) nd += `,tftp=${n.tftpDir}`;
    if (n.bootfile) nd += `,bootfile=${n.bootfile}`;
    a.push('-netdev', nd);
    let dev = `virtio-net-pci,netdev=n0,mac=${n.mac ?? randomMac()}`;
    if (!n.boot) dev += ',romfile=';
    else if (byQemu) dev += `,bootindex=${bootIndex++}`;
    a.push('-device', dev);
  }
  ctx.disks.forEach((d, i) => {
    a.push('-drive', `file=${d.file},format=${d.format},if=none,id=disk${i},cache=unsafe,discard=unmap`);
    const bi = byQemu ? `,bootindex=${bootIndex++}` : '';
    if (d.bus === 'virtio') a.push('-device', `virtio-blk-pci,drive=disk${i},serial=${d.serial}${bi}`);
    else if (d.bus === 'nvme') a.push('-device', `nvme,drive=disk${i},serial=${d.serial}${bi}`);
    else a.push('-device', `ide-hd,drive=disk${i},bus=ide.${i},serial=${d.serial}${bi}`);
  });
  if (opts.kernel) {
    a.push('-kernel', opts.kernel.kernel);
    if (opts.kernel.initrd) a.push('-initrd', opts.kernel.initrd);
    a.push('-append', opts.kernel.append ?? 'console=ttyS0 no_timer_check');
  }
  if (opts.onReboot === 'exit') a.push('-action', 'reboot=shutdown');
  a.push(...(opts.extraArgs ?? []));
  return a;
}

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

/** A locally administered unicast MAC (52:54:00 is QEMU's prefix). */
export function randomMac(): string {
  const b = randomBytes(3);
  return ['52', '54', '00', ...[...b].map((x) => x.toString(16).padStart(2, '0'))].join(':');
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

let accelChoice: Promise<'tcg' | 'kvm'> | undefined;

/** Start a guest. Disks without a file are created in the guest's own directory. */
export async function startGuest(opts: GuestOptions): Promise<Guest> {
  const base = opts.baseDir ?? tmpdir();
  mkdirSync(base, { recursive: true });
  const dir = await fsp.mkdtemp(join(base, `ferry-vm-${opts.name.replace(/[^A-Za-z0-9_.-]/g, '_')}-`));
  const accel = opts.accel === 'tcg' || opts.accel === 'kvm' ? opts.accel : await chooseAccel();
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
  const argv = qemuArgv(o, { accel, dir, disks, varsFile });
  return new Guest({ name: opts.name, dir, argv, accel, disks, mac: net ? net.mac : undefined });
}

/**
 * Guests started by one test file; `closeAll` keeps the directories of a failed test, and of
 * every test when FERRY_VM_KEEP=1 (to read a passing run's console, say where its time went).
 */
export class GuestSet {
  private guests: Guest[] = [];
  async start(opts: GuestOptions): Promise<Guest> {
    const g = await startGuest(opts);
    this.guests.push(g);
    return g;
  }
  async closeAll(failed: boolean): Promise<void> {
    const gs = this.guests;
    this.guests = [];
    const keep = failed || process.env.FERRY_VM_KEEP === '1';
    for (const g of gs) await g.close({ keep });
  }
}

/** sha256 of a file's bytes (to prove a disk image was not touched). */
export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 4 * 1024 * 1024 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

// ---------------------------------------------------------------------------------------
// Debian's kernel and a busybox initrd: enough to boot a shell on the serial console.

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
  let deb = (await fsp.readdir(kdir)).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (!deb) {
    await run(['apt-get', 'download', pkg], { cwd: kdir, timeoutMs: 600_000 });
    deb = (await fsp.readdir(kdir)).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
    if (!deb) throw new FerryError('FERRY_E_TOOL_MISSING', `apt-get download ${pkg} left no .deb in ${kdir}`);
  }
  const tmp = `${root}.tmp-${process.pid}`;
  await fsp.rm(tmp, { recursive: true, force: true });
  await run(['dpkg-deb', '-x', join(kdir, deb), tmp], { timeoutMs: 600_000 });
  await run(['depmod', '-b', tmp, version], { timeoutMs: 300_000 });
  await fsp.rm(root, { recursive: true, force: true });
  await fsp.rename(tmp, root);
  return { version, vmlinuz, root };
}

/** The line the default init prints when its shell is ready on the console. */
export const SHELL_READY = 'FERRY-VM-SHELL-READY';

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

/** Resolve modules and their dependencies through modules.dep. */
export async function moduleClosure(kernel: DebianKernel, names: string[]): Promise<string[]> {
  const depText = await fsp.readFile(join(kernel.root, 'lib', 'modules', kernel.version, 'modules.dep'), 'utf8');
  const deps = new Map<string, string[]>();
  const byName = new Map<string, string>();
  for (const line of depText.split('\n')) {
    const [k, v] = line.split(':');
    if (!k) continue;
    deps.set(k, (v ?? '').trim().split(/\s+/).filter(Boolean));
    byName.set(k.split('/').pop()!.replace(/\.ko(\.[a-z]+)?$/, '').replace(/-/g, '_'), k);
  }
  const out = new Set<string>();
  const missing: string[] = [];
  const visit = (p: string) => {
    if (out.has(p)) return;
    out.add(p);
    for (const d of deps.get(p) ?? []) visit(d);
  };
  for (const n of names) {
    const p = byName.get(n.replace(/-/g, '_'));
    if (p) visit(p);
    else missing.push(n);
  }
  // Built-in drivers have no .ko: modules.builtin names them.
  if (missing.length) {
    const builtin = await fsp.readFile(join(kernel.root, 'lib', 'modules', kernel.version, 'modules.builtin'), 'utf8');
    const bnames = new Set(builtin.split('\n').map((l) => l.split('/').pop()!.replace(/\.ko$/, '').replace(/-/g, '_')));
    const really = missing.filter((m) => !bnames.has(m.replace(/-/g, '_')));
    if (really.length) throw new FerryError('FERRY_E_TOOL_MISSING', `kernel ${kernel.version} has no modules named ${really.join(', ')}`);
  }
  return [...out];
}

/** Build a small initrd from busybox-static (plus chosen kernel modules). */
export async function buildBusyboxInitrd(o: BusyboxInitrdOptions): Promise<string> {
  const root = await fsp.mkdtemp(join(tmpdir(), 'ferry-initrd-'));
  try {
    for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'proc', 'sys', 'dev', 'tmp', 'run', 'etc', 'root']) mkdirSync(join(root, d), { recursive: true });
    await fsp.copyFile('/bin/busybox', join(root, 'bin', 'busybox'));
    await fsp.chmod(join(root, 'bin', 'busybox'), 0o755);
    const applets = (await run([join(root, 'bin', 'busybox'), '--list-full'], { quiet: true })).stdout.split('\n').filter(Boolean);
    for (const a of applets) {
      const target = join(root, a);
      if (!existsSync(target)) await fsp.symlink('/bin/busybox', target).catch(() => {});
    }
    const mods = o.modules ?? [];
    if (mods.length) {
      const rel = await moduleClosure(o.kernel, mods);
      const mroot = join('lib', 'modules', o.kernel.version);
      for (const r of rel) {
        mkdirSync(join(root, mroot, r, '..'), { recursive: true });
        await fsp.copyFile(join(o.kernel.root, mroot, r), join(root, mroot, r));
      }
      for (const f of ['modules.order', 'modules.builtin']) await fsp.copyFile(join(o.kernel.root, mroot, f), join(root, mroot, f));
      await run(['depmod', '-b', root, o.kernel.version], { quiet: true });
    }
    for (const [p, content] of Object.entries(o.files ?? {})) {
      const target = join(root, p.replace(/^\/+/, ''));
      mkdirSync(join(target, '..'), { recursive: true });
      await fsp.writeFile(target, content);
    }
    await fsp.writeFile(join(root, 'init'), o.init ?? defaultInit(mods), { mode: 0o755 });
    const list = (await run(['find', '.', '-mindepth', '1'], { cwd: root, quiet: true })).stdout;
    await run(['cpio', '--quiet', '-o', '-H', 'newc', '-O', o.out], { cwd: root, input: list, quiet: true });
    return o.out;
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------
// KVM: used only when a probe guest boots under a deadline.

export interface KvmProbe {
  usable: boolean;
  reason: string;
}

export async function probeKvm(timeoutMs = 20_000): Promise<KvmProbe> {
  if (!existsSync('/dev/kvm')) return { usable: false, reason: '/dev/kvm does not exist' };
  try {
    await fsp.access('/dev/kvm', 2 /* W_OK */);
  } catch {
    return { usable: false, reason: '/dev/kvm is not writable' };
  }
  const kernel = await ensureDebianKernel();
  const work = await fsp.mkdtemp(join(tmpdir(), 'ferry-kvm-probe-'));
  const initrd = await buildBusyboxInitrd({ kernel, out: join(work, 'initrd.img') });
  let g: Guest | undefined;
  try {
    g = await startGuest({ name: 'kvm-probe', accel: 'kvm', memoryMiB: 256, kernel: { kernel: kernel.vmlinuz, initrd, append: 'console=ttyS0 no_timer_check quiet' }, net: false, baseDir: work });
    await g.waitFor(new RegExp(SHELL_READY), { timeoutMs, what: 'the KVM probe guest to reach its shell' });
    return { usable: true, reason: 'a KVM guest reached its shell' };
  } catch (e) {
    return { usable: false, reason: `a KVM guest did not boot: ${(e as Error).message.split('\n')[0]}` };
  } finally {
    await g?.close();
    await fsp.rm(work, { recursive: true, force: true });
  }
}

export function chooseAccel(): Promise<'tcg' | 'kvm'> {
  const forced = process.env.FERRY_VM_ACCEL;
  if (forced === 'tcg' || forced === 'kvm') return Promise.resolve(forced);
  accelChoice ??= probeKvm().then((p) => {
    process.stderr.write(`[vm harness] accel ${p.usable ? 'kvm' : 'tcg'}: ${p.reason}\n`);
    return p.usable ? 'kvm' : 'tcg';
  });
  return accelChoice;
}
