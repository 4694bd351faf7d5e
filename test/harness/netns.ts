/**
 * Many nodes without VMs: a server and N nodes, each in its own network namespace, on one bridge,
 * every link shaped with tc. For the fan-out tests and benchmarks (issue 13: HTTP, BitTorrent and
 * multicast to a rack, server egress), the SSH tests (issue 15: sshd per node, `ferry exec` on many
 * nodes) and the power/discovery tests (issue 18: nodes that appear, vanish and come back). Runs as
 * root in the integration tier; never in the unit tier (the command runner refuses there).
 *
 * Topology of one run (ID is a fresh 5-character id, so runs and test files never collide):
 *
 *     fxh-ID-sw    switch namespace: bridge br0 (IGMP snooping off, so multicast floods), ports p0…
 *     fxh-ID-srv   the server: eth0 = 10.X.Y.1/24      (or the host itself, see `server: 'host'`)
 *     fxh-ID-n0…   node i: eth0 = 10.X.Y.(10+i)/24, MAC 02:fe:X:Y:00:(10+i)
 *
 * 10.X.Y.0/24 is picked per run. Every address has a broadcast (`brd +`) and every endpoint a route
 * 224.0.0.0/4 on its link: udpcast finds its peers through the broadcast address and fails without
 * either. IPv6 is off inside the namespaces so that counters hold only the traffic a test makes
 * (plus ARP). Each link is shaped on both ends (`tc qdisc add dev IF root tbf rate R burst 64kb
 * latency 100ms`): the switch port shapes what goes to the endpoint, the endpoint's eth0 what it
 * sends.
 *
 * API
 *
 *     const net = await createNetwork({ nodes: 4, rate: '80mbit', serverRate: '1gbit', rates: { 3: '20mbit' } });
 *     net.server, net.nodes[i]              Endpoint: name ('server', 'n0'…), ns, ip, mac, ifname, rate, dir
 *     await ep.run(argv, opts)              run to completion in ep's namespace (the common/run.ts runner,
 *                                           `ip netns exec NS argv…`); rejects like run() does
 *     const p = ep.spawn(argv, opts)        long-running process in ep's namespace, output captured:
 *       p.output / p.stdout / p.stderr      text so far (bounded: the last MiB of each)
 *       await p.waitForOutput(/re/, ms)     wait for a line (a listening socket, a log line)
 *       await p.exited / p.done             {code, signal} / the runner's promise (rejects on failure)
 *       await p.kill()                      SIGKILL and wait for the exit
 *     await ep.counters()                   {txBytes, rxBytes} of ep's link, read from
 *                                           /sys/class/net/IF/statistics inside ep's namespace
 *     await ep.setRate('20mbit')            reshape both ends of ep's link
 *     await ep.cut() / ep.restore()         pull / plug the cable: the switch port goes down (ep's own
 *                                           addresses and routes stay, as on a real machine)
 *     await ep.killAll()                    SIGKILL every process in ep's namespace (a node dying mid-swarm)
 *     await net.waitFor(check, {what, timeoutMs})   common/wait.ts waitFor: never fixed sleeps
 *     await net.teardown()                  kill every process, delete namespaces (veths and the bridge
 *                                           go with them), remove the run directory; idempotent
 *
 * `taps: N` adds tap0…tapN-1 to the bridge (in the switch namespace): QEMU guests on the same layer-2
 * segment as the server and the nodes (the vm tier's multicast install). `net.taps[i]` gives the
 * device and `wrap(argv)`, the command in the namespace QEMU must run in to open it.
 *
 * `server: 'host'` puts the host's own network namespace in the server's place (a veth `fxhID` in the
 * root namespace, address 10.X.Y.1): for tests that run the Ferry server or an ssh2 client in the
 * test process itself. The /24 is checked against the host's routes first; nothing else of the host
 * changes, and the veth disappears with the switch namespace.
 *
 * No process outlives the test: every process is started under `setpriv --pdeathsig KILL` (it dies
 * with the test process, as the QEMU harness does), teardown kills everything still inside each
 * namespace (`ip netns pids`, so grandchildren too), an exit handler does the same if a test process
 * ends without teardown, and every createNetwork first sweeps namespaces of crashed runs: a run writes
 * /run/ferry-netns/ID (its pid and start time) before creating anything, and namespaces named
 * `fxh-ID-…` whose owner is gone are killed and deleted (`sweepStale()`, also callable alone).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { run, spawnTool, type RunOptions, type RunResult, type Spawned } from '../../common/run.js';
import { waitFor, type WaitOptions } from '../../common/wait.js';

export const NS_PREFIX = 'fxh-';
const MARKER_DIR = '/run/ferry-netns';
const NETNS_DIR = '/run/netns';
const NODE_BASE = 10;
const MAX_NODES = 240;
const MAX_TAPS = 16;
const IFNAME = 'eth0';
const OUTPUT_CAP = 1024 * 1024;

export interface NetworkOptions {
  nodes: number;
  /** tbf rate of every link unless overridden (tc syntax: '80mbit', '1gbit'). Default 80mbit. */
  rate?: string;
  /** Rate of the server's link. Default: `rate`. */
  serverRate?: string;
  /** Per-node rates by node index, e.g. { 3: '20mbit' } for one slow node. */
  rates?: Record<number, string>;
  /** 'namespace' (default): the server has its own namespace. 'host': the test process's own namespace. */
  server?: 'namespace' | 'host';
  /** Keep the run directory (node dirs, process logs) after teardown and print where it is. */
  keepDir?: boolean;
  /**
   * Tap devices on the bridge, for QEMU guests on the same segment (the vm tier): tap0… in the
   * switch namespace, ports of br0 like the veths. A guest opens its tap from that namespace
   * (`ip netns exec SW qemu … -netdev tap,ifname=tap0,script=no`); its traffic is not shaped (a
   * guest under TCG is slower than any link). `nodes` may then be 0.
   */
  taps?: number;
}

/** A tap device on the bridge: a QEMU guest's NIC (see NetworkOptions.taps). */
export interface TapEndpoint {
  /** tap0, tap1…: the device in the switch namespace. */
  ifname: string;
  /** The namespace the tap lives in and QEMU must be started in (the switch's). */
  ns: string;
  /** `argv` wrapped to run in that namespace. */
  wrap(argv: string[]): string[];
}

export interface Counters {
  txBytes: number;
  rxBytes: number;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A long-running process inside an endpoint's namespace. */
export class NsProcess {
  readonly exited: Promise<ProcessExit>;
  /** The runner's promise: resolves on exit code 0 (or an okCode), rejects with the argv and stderr tail. */
  readonly done: Promise<RunResult>;
  private out = '';
  private err = '';
  private all = '';
  private exit?: ProcessExit;

  constructor(readonly argv: string[], private readonly proc: Spawned, logFile: string) {
    const log = fs.createWriteStream(logFile);
    log.write(`$ ${argv.join(' ')}\n`);
    const keep = (s: string) => (s.length > OUTPUT_CAP ? s.slice(s.length - OUTPUT_CAP) : s);
    proc.child.stdout?.on('data', (b: Buffer) => {
      const s = b.toString('utf8');
      this.out = keep(this.out + s);
      this.all = keep(this.all + s);
      log.write(b);
    });
    proc.child.stderr?.on('data', (b: Buffer) => {
      const s = b.toString('utf8');
      this.err = keep(this.err + s);
      this.all = keep(this.all + s);
      log.write(b);
    });
    // The run directory may be gone (teardown) before the log is flushed: that must not crash the test.
    log.on('error', () => {});
    this.exited = new Promise((resolve) => {
      proc.child.on('close', (code, signal) => {
        const exit = { code, signal };
        this.exit = exit;
        const finish = () => resolve(exit);
        log.once('error', finish);
        log.end(`\n[harness] exited code=${code} signal=${signal}\n`, finish);
      });
    });
    this.done = proc.done;
  }

  get pid(): number | undefined {
    return this.proc.child.pid;
  }
  get stdout(): string {
    return this.out;
  }
  get stderr(): string {
    return this.err;
  }
  /** stdout and stderr interleaved as they arrived. */
  get output(): string {
    return this.all;
  }
  get hasExited(): boolean {
    return this.exit !== undefined;
  }

  /** Wait until the output matches; fails at once (with the output) if the process exits first. */
  async waitForOutput(pattern: RegExp | string, timeoutMs: number, what?: string): Promise<string> {
    const match = () => (typeof pattern === 'string' ? (this.all.includes(pattern) ? pattern : null) : (pattern.exec(this.all)?.[0] ?? null));
    const r = await waitFor(() => {
      const m = match();
      return m !== null ? { m } : this.exit ? { exited: this.exit } : null;
    }, { what: what ?? `${pattern} in the output of ${this.argv.join(' ')}`, timeoutMs });
    if (r.m !== undefined) return r.m;
    throw new Error(`${this.argv.join(' ')} exited (code ${r.exited?.code}, signal ${r.exited?.signal}) before printing ${pattern}:\n${this.all.slice(-2000)}`);
  }

  /** Kill the process (SIGKILL by default) and wait for its exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<ProcessExit> {
    if (!this.exit) this.proc.child.kill(signal);
    return this.exited;
  }
}

export interface SpawnOptions extends Omit<RunOptions, 'input' | 'timeoutMs'> {
  /** A name for the log file in the run directory (default: the program's name and a counter). */
  label?: string;
}

/** One end of the network: the server or a node. */
export class Endpoint {
  constructor(
    private readonly net: Network,
    /** 'server', or 'n0', 'n1'… */
    readonly name: string,
    /** Node index, -1 for the server. */
    readonly index: number,
    /** Its namespace, or null for the host in `server: 'host'` mode. */
    readonly ns: string | null,
    readonly ip: string,
    readonly mac: string,
    /** Its interface inside its namespace (eth0, or fxhID on the host). */
    readonly ifname: string,
    /** Its port on the switch (in the switch namespace). */
    readonly port: string,
    readonly rate: string,
    /** A directory of its own (node roots, keys, downloads), removed with the network. */
    readonly dir: string,
  ) {}

  /** argv prefixed so that it runs inside this endpoint's namespace. */
  wrap(argv: string[]): string[] {
    return this.ns ? ['ip', 'netns', 'exec', this.ns, ...argv] : argv;
  }

  run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    return run(this.wrap(argv), { quiet: true, ...opts });
  }

  spawn(argv: string[], opts: SpawnOptions = {}): NsProcess {
    return this.net.spawnIn(this, argv, opts);
  }

  /** Bytes sent and received on this endpoint's link, as its own kernel counts them. */
  async counters(): Promise<Counters> {
    const dir = `/sys/class/net/${this.ifname}/statistics`;
    // `ip netns exec` remounts /sys for the namespace, so these are the namespace's own interfaces.
    const r = await this.run(['cat', `${dir}/tx_bytes`, `${dir}/rx_bytes`]);
    const [tx, rx] = r.stdout.trim().split(/\s+/).map(Number);
    return { txBytes: tx, rxBytes: rx };
  }

  /** Pull the cable: the switch port goes down, the endpoint sees no carrier but keeps its config. */
  async cut(): Promise<void> {
    await run(['ip', '-n', this.net.switchNs, 'link', 'set', 'dev', this.port, 'down'], { quiet: true });
  }

  async restore(): Promise<void> {
    await run(['ip', '-n', this.net.switchNs, 'link', 'set', 'dev', this.port, 'up'], { quiet: true });
    await this.net.waitFor(async () => (await this.operstate()) === 'up', { what: `${this.name}'s link ${this.ifname} to come back up`, timeoutMs: 10_000 });
  }

  /** Reshape the link (both ends) to `rate`, e.g. one node that turns slow mid-run. */
  async setRate(rate: string): Promise<void> {
    await run([...(this.ns ? ['tc', '-n', this.ns] : ['tc']), 'qdisc', 'change', 'dev', this.ifname, ...tbf(rate)], { quiet: true });
    await run(['tc', '-n', this.net.switchNs, 'qdisc', 'change', 'dev', this.port, ...tbf(rate)], { quiet: true });
    this.currentRate = rate;
  }

  /** The rate the link is shaped to now. */
  get shapedRate(): string {
    return this.currentRate ?? this.rate;
  }
  private currentRate?: string;

  /** The link state as the endpoint sees it: 'up', 'down' (no carrier). */
  async operstate(): Promise<string> {
    return (await this.run(['cat', `/sys/class/net/${this.ifname}/operstate`])).stdout.trim();
  }

  /** PIDs of every process inside this endpoint's namespace. */
  async pids(): Promise<number[]> {
    if (!this.ns) throw new Error('the host namespace is not the harness\'s to list or kill');
    return nsPids(this.ns);
  }

  /** SIGKILL every process in the namespace and wait until none is left (a node that dies). */
  async killAll(): Promise<void> {
    if (!this.ns) throw new Error('the host namespace is not the harness\'s to list or kill');
    await killNamespace(this.ns);
  }
}

export class Network {
  readonly server: Endpoint;
  readonly nodes: Endpoint[];
  readonly taps: TapEndpoint[];
  private readonly procs = new Set<NsProcess>();
  private spawned = 0;
  private torn = false;

  constructor(
    readonly id: string,
    /** 10.X.Y.0/24 */
    readonly subnet: string,
    readonly switchNs: string,
    /** Every namespace of this run, the switch last. */
    readonly namespaces: string[],
    readonly dir: string,
    make: (net: Network) => { server: Endpoint; nodes: Endpoint[] },
    private readonly keepDir: boolean,
    taps = 0,
  ) {
    const e = make(this);
    this.server = e.server;
    this.nodes = e.nodes;
    this.taps = Array.from({ length: taps }, (_, i) => ({ ifname: `tap${i}`, ns: switchNs, wrap: (argv: string[]) => ['ip', 'netns', 'exec', switchNs, ...argv] }));
  }

  get endpoints(): Endpoint[] {
    return [this.server, ...this.nodes];
  }

  waitFor<T>(check: () => T | Promise<T>, opts: WaitOptions): Promise<NonNullable<T>> {
    return waitFor(check, opts);
  }

  /** @internal Endpoint.spawn */
  spawnIn(ep: Endpoint, argv: string[], opts: SpawnOptions): NsProcess {
    if (this.torn) throw new Error(`network ${this.id} is torn down`);
    const n = ++this.spawned;
    const label = (opts.label ?? `${path.basename(argv[0])}-${n}`).replace(/[^A-Za-z0-9._-]/g, '_');
    const { label: _l, ...runOpts } = opts;
    // pdeathsig: the process dies with the test process even when vitest is killed; `ip netns exec`
    // execs the command in place (no fork), so the signal setting reaches it.
    const proc = spawnTool(['setpriv', '--pdeathsig', 'KILL', '--', ...ep.wrap(argv)], { quiet: true, ...runOpts, stdout: 'pipe' });
    const p = new NsProcess(argv, proc, path.join(this.dir, `${ep.name}.${label}.log`));
    this.procs.add(p);
    void p.exited.then(() => this.procs.delete(p));
    return p;
  }

  /** Everything the processes of this run printed, for a failing test's message. */
  logs(): string {
    const files = fs.existsSync(this.dir) ? fs.readdirSync(this.dir).filter((f) => f.endsWith('.log')) : [];
    return files.map((f) => `== ${f}\n${fs.readFileSync(path.join(this.dir, f), 'utf8').slice(-4000)}`).join('\n');
  }

  get isTornDown(): boolean {
    return this.torn;
  }

  async teardown(): Promise<void> {
    if (this.torn) return;
    this.torn = true;
    live.delete(this);
    const problems: string[] = [];
    for (const p of this.procs) await p.kill().catch(() => {});
    if (!this.server.ns) {
      // Namespaces are destroyed asynchronously by the kernel; delete the host's veth now so that it
      // is gone when teardown returns (its peer in the switch goes with it).
      await run(['ip', 'link', 'del', 'dev', this.server.ifname], { quiet: true }).catch((e: Error) => {
        if (fs.existsSync(`/sys/class/net/${this.server.ifname}`)) problems.push(`${this.server.ifname}: ${e.message}`);
      });
    }
    for (const ns of this.namespaces) {
      try {
        await killNamespace(ns);
        await run(['ip', 'netns', 'del', ns], { quiet: true });
      } catch (e) {
        problems.push(`${ns}: ${(e as Error).message}`);
      }
    }
    fs.rmSync(path.join(MARKER_DIR, this.id), { force: true });
    if (this.keepDir) process.stderr.write(`[netns harness] kept ${this.dir}\n`);
    else await fsp.rm(this.dir, { recursive: true, force: true });
    if (problems.length) throw new Error(`netns teardown of ${this.id} left problems:\n${problems.join('\n')}`);
  }
}

// ---------------------------------------------------------------------------------------------

const live = new Set<Network>();
let exitHandler = false;

function ensureExitHandler(): void {
  if (exitHandler) return;
  exitHandler = true;
  // An exit handler must be synchronous, so it cannot use the (asynchronous) command runner.
  process.on('exit', () => {
    for (const net of live) {
      for (const ns of net.namespaces) {
        const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
        for (const pid of (r.stdout ?? '').split(/\s+/).filter(Boolean)) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            /* already gone */
          }
        }
        spawnSync('ip', ['netns', 'del', ns]);
      }
      fs.rmSync(path.join(MARKER_DIR, net.id), { force: true });
    }
  });
}

async function nsPids(ns: string): Promise<number[]> {
  const r = await run(['ip', 'netns', 'pids', ns], { quiet: true });
  return r.stdout.split(/\s+/).filter(Boolean).map(Number);
}

async function killNamespace(ns: string): Promise<void> {
  await waitFor(
    async () => {
      const pids = await nsPids(ns);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* exited meanwhile */
        }
      }
      return pids.length === 0;
    },
    { what: `every process in namespace ${ns} to be gone`, timeoutMs: 10_000 },
  );
}

/** Start time of a process (clock ticks since boot), to tell a live owner from a reused pid. */
function startTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function ownerAlive(id: string): boolean {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(MARKER_DIR, id), 'utf8')) as { pid: number; start: string };
    return startTime(m.pid) === m.start;
  } catch {
    return false;
  }
}

/** The harness namespaces that exist now, by run id. */
export function harnessNamespaces(): Map<string, string[]> {
  const byId = new Map<string, string[]>();
  const names = fs.existsSync(NETNS_DIR) ? fs.readdirSync(NETNS_DIR) : [];
  for (const n of names) {
    const m = /^fxh-([a-z0-9]+)-/.exec(n);
    if (!m) continue;
    byId.set(m[1], [...(byId.get(m[1]) ?? []), n]);
  }
  return byId;
}

/**
 * Delete the namespaces (and kill the processes in them) of harness runs whose test process is gone.
 * Runs of live processes are left alone. Returns the namespaces deleted.
 */
export async function sweepStale(): Promise<string[]> {
  const deleted: string[] = [];
  for (const [id, names] of harnessNamespaces()) {
    if (ownerAlive(id)) continue;
    // The switch last: deleting it removes the veth ends of the others (and a host-mode veth).
    for (const ns of names.sort((a, b) => Number(a.endsWith('-sw')) - Number(b.endsWith('-sw')))) {
      await killNamespace(ns);
      await run(['ip', 'netns', 'del', ns], { quiet: true });
      deleted.push(ns);
    }
    fs.rmSync(path.join(MARKER_DIR, id), { force: true });
    await fsp.rm(path.join(os.tmpdir(), `ferry-netns-${id}`), { recursive: true, force: true });
  }
  // Markers of runs that died before (or while) creating their namespaces.
  for (const id of fs.existsSync(MARKER_DIR) ? fs.readdirSync(MARKER_DIR) : []) {
    if (!ownerAlive(id) && !harnessNamespaces().has(id)) fs.rmSync(path.join(MARKER_DIR, id), { force: true });
  }
  return deleted;
}

const hex = (n: number) => n.toString(16).padStart(2, '0');

async function pickSubnet(host: boolean): Promise<[number, number]> {
  const used = new Set<string>();
  if (host) {
    const r = await run(['ip', '-j', '-4', 'route', 'show', 'table', 'all'], { quiet: true });
    for (const route of JSON.parse(r.stdout || '[]') as { dst?: string }[]) if (route.dst) used.add(route.dst);
  }
  for (;;) {
    const [a, b] = randomBytes(2);
    const x = 100 + (a % 150);
    if (!used.has(`10.${x}.${b}.0/24`)) return [x, b];
  }
}

/** Build the network. Tear it down with `teardown()` (in afterAll/finally). */
export async function createNetwork(opts: NetworkOptions): Promise<Network> {
  const taps = opts.taps ?? 0;
  if (!Number.isInteger(taps) || taps < 0 || taps > MAX_TAPS) throw new Error(`taps must be 0…${MAX_TAPS}, got ${opts.taps}`);
  const minNodes = taps > 0 ? 0 : 1;
  if (!Number.isInteger(opts.nodes) || opts.nodes < minNodes || opts.nodes > MAX_NODES) throw new Error(`nodes must be ${minNodes}…${MAX_NODES}, got ${opts.nodes}`);
  await sweepStale();
  const host = opts.server === 'host';
  const id = randomBytes(4).readUInt32BE(0).toString(36).padStart(7, '0').slice(-5);
  fs.mkdirSync(MARKER_DIR, { recursive: true });
  fs.writeFileSync(path.join(MARKER_DIR, id), JSON.stringify({ pid: process.pid, start: startTime(process.pid) }));
  const [x, y] = await pickSubnet(host);
  const subnet = `10.${x}.${y}.0/24`;
  const sw = `${NS_PREFIX}${id}-sw`;
  const srvNs = host ? null : `${NS_PREFIX}${id}-srv`;
  const nodeNs = Array.from({ length: opts.nodes }, (_, i) => `${NS_PREFIX}${id}-n${i}`);
  const namespaces = [...(srvNs ? [srvNs] : []), ...nodeNs, sw];
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), `ferry-netns-${id}-`)).then(async (d) => {
    // A fixed name, so that the stale sweep finds it by id.
    const fixed = path.join(os.tmpdir(), `ferry-netns-${id}`);
    await fsp.rename(d, fixed);
    return fixed;
  });
  const rate = opts.rate ?? '80mbit';
  const net = new Network(
    id,
    subnet,
    sw,
    namespaces,
    dir,
    (n) => {
      const mk = (name: string, index: number, ns: string | null, last: number, r: string, ifname: string) => {
        const d = path.join(dir, name);
        fs.mkdirSync(d, { recursive: true });
        return new Endpoint(n, name, index, ns, `10.${x}.${y}.${last}`, `02:fe:${hex(x)}:${hex(y)}:00:${hex(last)}`, ifname, index < 0 ? 'ps' : `p${index}`, r, d);
      };
      return {
        server: mk('server', -1, srvNs, 1, opts.serverRate ?? rate, host ? `fxh${id}` : IFNAME),
        nodes: nodeNs.map((ns, i) => mk(`n${i}`, i, ns, NODE_BASE + i, opts.rates?.[i] ?? rate, IFNAME)),
      };
    },
    !!opts.keepDir,
    taps,
  );
  live.add(net);
  ensureExitHandler();
  try {
    await build(net, host, x, y);
  } catch (e) {
    await net.teardown().catch(() => {});
    throw e;
  }
  return net;
}

const q = { quiet: true } as const;
const tbf = (rate: string) => ['root', 'tbf', 'rate', rate, 'burst', '64kb', 'latency', '100ms'];

async function build(net: Network, host: boolean, x: number, y: number): Promise<void> {
  const sw = net.switchNs;
  await run(['ip', 'netns', 'add', sw], q);
  // Snooping off: without an IGMP querier on the segment a snooping bridge may drop multicast.
  await run(['ip', '-n', sw, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0'], q);
  await run(['ip', '-n', sw, 'link', 'set', 'br0', 'up'], q);
  const attach = async (ep: Endpoint) => {
    if (ep.ns) {
      await run(['ip', 'netns', 'add', ep.ns], q);
      await run(['ip', 'netns', 'exec', ep.ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'], q);
      await run(['ip', '-n', ep.ns, 'link', 'set', 'lo', 'up'], q);
      await run(['ip', 'link', 'add', ep.port, 'netns', sw, 'type', 'veth', 'peer', 'name', ep.ifname, 'netns', ep.ns], q);
    } else {
      // The host's end stays in the root namespace under a per-run name.
      await run(['ip', 'link', 'add', ep.ifname, 'type', 'veth', 'peer', 'name', ep.port, 'netns', sw], q);
      await run(['sysctl', '-q', '-w', `net.ipv6.conf.${ep.ifname}.disable_ipv6=1`], q);
    }
    const ipn = ep.ns ? ['ip', '-n', ep.ns] : ['ip'];
    const tcn = ep.ns ? ['tc', '-n', ep.ns] : ['tc'];
    await run(['ip', '-n', sw, 'link', 'set', 'dev', ep.port, 'master', 'br0', 'up'], q);
    await run([...ipn, 'link', 'set', 'dev', ep.ifname, 'address', ep.mac, 'up'], q);
    await run([...ipn, 'addr', 'add', `${ep.ip}/24`, 'brd', '+', 'dev', ep.ifname], q);
    // On the host a route to 224/4 may exist already: a per-run metric keeps both.
    await run([...ipn, 'route', 'add', '224.0.0.0/4', 'dev', ep.ifname, ...(ep.ns ? [] : ['metric', String(1000 + x * 256 + y)])], q);
    await run([...tcn, 'qdisc', 'add', 'dev', ep.ifname, ...tbf(ep.rate)], q);
    await run(['tc', '-n', sw, 'qdisc', 'add', 'dev', ep.port, ...tbf(ep.rate)], q);
  };
  const all = net.endpoints;
  // A few at a time: the machine has 2 cores, and ip/tc calls are short.
  for (let i = 0; i < all.length; i += 8) await Promise.all(all.slice(i, i + 8).map(attach));
  for (const t of net.taps) {
    // No carrier until QEMU opens it: the link check below is for the veths only.
    await run(['ip', '-n', sw, 'tuntap', 'add', 'dev', t.ifname, 'mode', 'tap'], q);
    await run(['ip', '-n', sw, 'link', 'set', 'dev', t.ifname, 'master', 'br0', 'up'], q);
  }
  await waitFor(async () => (await Promise.all(all.map((e) => e.operstate()))).every((s) => s === 'up'), {
    what: `every link of network ${net.id} to be up`,
    timeoutMs: 10_000,
  });
}

/** Path of a probe script (plain JavaScript, run with this Node): tcp-sink.mjs, tcp-send.mjs. */
export function probe(name: string): string {
  return path.join(path.dirname(new URL(import.meta.url).pathname), 'probes', name);
}
