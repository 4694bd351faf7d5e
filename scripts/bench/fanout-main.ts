/**
 * Benchmark (issue 13): install one image on N nodes at once, by each transport, in network
 * namespaces on one bridge (test/harness/netns.ts: every link shaped with tc tbf to --rate; the
 * server is this process, on the host's end of its own shaped link). Every node runs the real
 * `ferry install --server URL --token T --root DIR`. Per transport and N it prints the time until
 * the last node is done, T(N)/T(1) of that transport, T(N) over HTTP's T(1) (the baseline,
 * measured in the same run), and the server's egress (tx bytes counted on its link) divided by
 * the image's size. The boot environment counts too: before its install, every node downloads
 * the kernel and initrd from the server's boot routes as iPXE does (`/boot/vmlinuz`,
 * `/boot/initrd.img`, all nodes at once, over HTTP whatever the transport: iPXE has no other);
 * that phase is measured on its own (its time is not in T(N)), and the table gives the boot
 * environment's cost per node in MiB and the full install's egress (boot plus layers) over the
 * image's size beside the layers' alone. `--boot-dir DIR` (default build/boot) holds vmlinuz and
 * initrd.img; `--no-boot` leaves the phase out.
 *
 *   scripts/bench/fanout [--nodes 1,4,8] [--transport http,torrent,multicast] [--rate 100mbit] [--mib 64]
 *                        [--max-bitrate RATE (multicast; default 90 % of --rate)] [--max-wait 30]
 *                        [--slow 20mbit] [--late 3] [--extra-nodes 8] [--web-seed-only] [--seed-upload-limit 6M]
 *                        [--boot-dir build/boot | --no-boot]
 *
 * Torrent rows: the server seeds each layer as a BitTorrent peer (server/torrent/seeder.ts);
 * `--web-seed-only` runs them as before, with the blob's URL as the only source (BEP 19 web
 * seed), to compare the seeding policies; `--seed-upload-limit R` caps the server's seeder per
 * layer (aria2's --max-upload-limit, bytes/s: 6M). Each torrent node seeds until the swarm is done
 * (--seed-wait 60 at most), and that wait is in its time.
 *
 * `--slow RATE` adds, per transport, a run of --extra-nodes nodes (default 8) with the last one's
 * link reshaped to RATE: the others' time against their own T(N) of the grid (or of a run without
 * the slow node, measured here) says whether one slow receiver holds them back; for multicast
 * the slow one is dropped from the session and finishes over HTTP (its fallback is counted).
 * `--late S` adds a run of --extra-nodes nodes whose last one starts S seconds after the others:
 * its own time from its start against T(1), and how it got its layer (a late multicast receiver
 * takes HTTP at once).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { run } from '../../common/run.js';
import { parseByteRate } from '../../common/units.js';
import { TRANSPORTS, type TransportKind } from '../../common/protocol.js';
import { startServer } from '../../server/index.js';
import { createNetwork } from '../../test/harness/netns.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1,4,8' },
    transport: { type: 'string', default: 'http,multicast' },
    rate: { type: 'string', default: '100mbit' },
    mib: { type: 'string', default: '64' },
    'max-bitrate': { type: 'string' },
    'max-wait': { type: 'string', default: '30' },
    slow: { type: 'string' },
    late: { type: 'string' },
    'extra-nodes': { type: 'string', default: '8' },
    'web-seed-only': { type: 'boolean', default: false },
    'seed-upload-limit': { type: 'string' },
    'boot-dir': { type: 'string' },
    'no-boot': { type: 'boolean', default: false },
  },
});
const counts = values.nodes!.split(',').map(Number);
const transports = values.transport!.split(',') as TransportKind[];
const mib = Number(values.mib);
if (counts.some((n) => !Number.isInteger(n) || n < 1 || n > 64) || !counts.length) throw new Error('--nodes: a list of 1…64');
if (transports.some((t) => !TRANSPORTS.includes(t))) throw new Error(`--transport: from ${TRANSPORTS.join(',')}`);
if (!(mib > 0 && mib <= 4096)) throw new Error('--mib: 1…4096');
const rateM = /^(\d+)mbit$/.exec(values.rate!);
if (!rateM) throw new Error('--rate: NNmbit');
const maxBitrate = values['max-bitrate'] ?? `${Math.floor(Number(rateM[1]) * 0.9)}m`;
// Every install and the whole run are bounded.
const extraN = Number(values['extra-nodes']);
if (!Number.isInteger(extraN) || extraN < 2 || extraN > 64) throw new Error('--extra-nodes: 2…64');
if (values.slow !== undefined && !/^\d+mbit$/.test(values.slow)) throw new Error('--slow: NNmbit');
const lateS = values.late === undefined ? undefined : Number(values.late);
if (lateS !== undefined && !(lateS > 0 && lateS <= 60)) throw new Error('--late: 0…60 seconds');
const INSTALL_TIMEOUT_S = Math.max(120, Math.ceil(((mib * 8 * 1.1) / Number(rateM[1])) * Math.max(...counts) * 2));

const FERRY = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'ferry');
const BOOT_DIR = values['boot-dir'] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'build', 'boot');
const BOOT_FILES = ['vmlinuz', 'initrd.img'];
const bootBytes = values['no-boot'] ? 0 : BOOT_FILES.reduce((a, f) => {
  const file = path.join(BOOT_DIR, f);
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist: build the boot environment (make initrd), give --boot-dir DIR, or --no-boot`);
  return a + fs.statSync(file).size;
}, 0);

async function main(): Promise<void> {
  const loadStart = os.loadavg();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-fanout-'));
  const data = path.join(work, 'data');
  const ferry = (args: string[]) => run([FERRY, ...args, '--data', data], { quiet: true, timeoutMs: 300_000 });
  const maxN = Math.max(...counts, values.slow || lateS !== undefined ? extraN : 1);
  const net = await createNetwork({ nodes: maxN, rate: values.rate, server: 'host' });
  try {
    const tree = path.join(work, 'tree');
    fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(tree, 'etc', 'hostname'), 'bench\n');
    // Incompressible: the layer on the wire is the size asked for.
    const fd = fs.openSync(path.join(tree, 'payload.bin'), 'w');
    for (let i = 0; i < mib; i++) fs.writeSync(fd, randomBytes(1 << 20));
    fs.closeSync(fd);
    fs.writeFileSync(path.join(work, 'layout.xml'), '<config><disk dev="/dev/sda" label_type="gpt" unit_of_measurement="MB"><part num="1" size="*" p_type="primary" p_name="root" flags="-"/></disk><fsinfo line="10" real_dev="/dev/sda1" mp="/" fs="ext4" options="defaults" dump="0" pass="1"/></config>');
    await ferry(['image', 'import', 'bench', '--dir', tree]);
    const image = JSON.parse((await ferry(['image', 'show', 'bench', '--json'])).stdout) as { layers: { size: number }[] };
    const imageBytes = image.layers.reduce((a, l) => a + l.size, 0);
    for (const n of net.nodes) await ferry(['node', 'add', n.name, '--mac', n.mac, '--image', 'bench', '--layout', path.join(work, 'layout.xml')]);
    const srv = await startServer({ dataDir: data, listen: `${net.server.ip}:0`, bootDir: BOOT_DIR, multicast: { interface: net.server.ifname }, torrentSeed: !values['web-seed-only'], torrentSeedRate: values['seed-upload-limit'] !== undefined ? parseByteRate(values['seed-upload-limit'], '--seed-upload-limit') : undefined });
    type Run = { s: number; perNode: number[]; egress: number; bootEgress: number; bootS: number; fellBack: boolean[]; load: number };
    /** The boot download of `nodes`, all at once as a rack's PXE boot: server egress in bytes and time. */
    const bootPhase = async (nodes: typeof net.nodes, label: string): Promise<{ bytes: number; s: number }> => {
      if (values['no-boot']) return { bytes: 0, s: 0 };
      const before = await net.server.counters();
      const t0 = Date.now();
      await Promise.all(nodes.map(async (x) => {
        for (const f of BOOT_FILES) {
          const p = x.spawn(['curl', '-sSf', '--max-time', String(INSTALL_TIMEOUT_S), '-o', '/dev/null', '-w', '%{size_download}', `${srv.url}/boot/${f}`], { label: `boot-${label}` });
          const e = await p.exited;
          if (e.code !== 0) throw new Error(`${label}: ${x.name} could not fetch /boot/${f}:\n${p.output.slice(-1000)}`);
        }
      }));
      const s = (Date.now() - t0) / 1000;
      const after = await net.server.counters();
      return { bytes: after.txBytes - before.txBytes, s };
    };
    /** Arm `nodes` in one deploy and install them all; `delays[i]` ms before node i starts. */
    const runOnce = async (t: TransportKind, nodes: typeof net.nodes, label: string, delays: number[] = [], deployArgs: string[] = []): Promise<Run> => {
      const extra = t === 'multicast' ? ['--max-bitrate', maxBitrate, '--max-wait', values['max-wait']!, ...deployArgs] : t === 'torrent' ? ['--seed-wait', '60'] : [];
      const armed = JSON.parse((await ferry(['deploy', ...nodes.map((x) => x.name), '--transport', t, ...extra, '--json'])).stdout).deployments as { id: number; token: string }[];
      const boot = await bootPhase(nodes, label);
      const before = await net.server.counters();
      const load = os.loadavg()[0];
      const t0 = Date.now();
      const starts: number[] = [];
      const procs = nodes.map(async (x, i) => {
        if (delays[i]) await new Promise((r) => setTimeout(r, delays[i]));
        const root = path.join(x.dir, `root-${armed[i].id}`);
        fs.mkdirSync(root);
        starts[i] = Date.now();
        const p = x.spawn(['timeout', String(INSTALL_TIMEOUT_S), FERRY, 'install', '--server', srv.url, '--token', armed[i].token, '--root', root, '--no-initramfs'], { label: `install-${label}` });
        const e = await p.exited;
        const end = Date.now();
        if (e.code !== 0) throw new Error(`${label}: ${x.name} failed:\n${p.output.slice(-2000)}`);
        return end;
      });
      const ends = await Promise.all(procs);
      const s = (Date.now() - t0) / 1000;
      const after = await net.server.counters();
      const fellBack: boolean[] = [];
      for (const a of armed) {
        const r = await fetch(`${srv.url}/api/v1/admin/deployments/${a.id}`, { headers: { authorization: `Bearer ${srv.adminToken}` } });
        const body = (await r.json()) as { events: { phase: string; state: string; ts?: string; message?: string; details?: { fallback?: string } }[] };
        if (process.env.FERRY_BENCH_DEBUG) for (const e of body.events) if (e.phase === 'layers' || e.phase === 'config') process.stderr.write(`  d${a.id} ${e.ts?.slice(11, 23)} ${e.phase} ${e.state} ${(e.message ?? '').slice(0, 60)}\n`);
        fellBack.push(body.events.some((e) => e.state === 'warning' && e.details?.fallback === 'http'));
      }
      nodes.forEach((x, i) => fs.rmSync(path.join(x.dir, `root-${armed[i].id}`), { recursive: true, force: true }));
      process.stderr.write(`[bench] ${label}: ${s.toFixed(1)} s (load average ${load.toFixed(1)})\n`);
      return { s, perNode: ends.map((e, i) => (e - starts[i]) / 1000), egress: (after.txBytes - before.txBytes) / imageBytes, bootEgress: boot.bytes, bootS: boot.s, fellBack, load };
    };
    const results: { transport: TransportKind; n: number; s: number; egress: number; bootEgress: number; bootS: number; fellBack: number; load: number }[] = [];
    const extras: string[] = [];
    try {
      for (const t of transports) {
        for (const n of counts) {
          const r = await runOnce(t, net.nodes.slice(0, n), `${t}-${n}`);
          results.push({ transport: t, n, s: r.s, egress: r.egress, bootEgress: r.bootEgress, bootS: r.bootS, fellBack: r.fellBack.filter(Boolean).length, load: r.load });
        }
      }
      // The slow and late runs, with their references (only when asked for).
      for (const t of values.slow || lateS !== undefined ? transports : []) {
        const nodes = net.nodes.slice(0, extraN);
        const t1 = results.find((x) => x.transport === t && x.n === 1)?.s ?? (await runOnce(t, nodes.slice(0, 1), `${t}-1-ref`)).s;
        const tN = results.find((x) => x.transport === t && x.n === extraN)?.s ?? (await runOnce(t, nodes, `${t}-${extraN}-ref`)).s;
        if (values.slow) {
          const slow = nodes[nodes.length - 1];
          await slow.setRate(values.slow);
          try {
            const r = await runOnce(t, nodes, `${t}-${extraN}-slow`);
            const others = Math.max(...r.perNode.slice(0, -1));
            extras.push(`${t.padEnd(9)}  slow: ${extraN} nodes, ${slow.name} at ${values.slow}: the others done in ${others.toFixed(1)} s = ${(others / tN).toFixed(2)} × T(${extraN}) (${tN.toFixed(1)} s); the slow node ${r.perNode[r.perNode.length - 1].toFixed(1)} s${r.fellBack[r.fellBack.length - 1] ? ' (dropped, finished over http)' : ''}; ${r.fellBack.slice(0, -1).filter(Boolean).length} other fallbacks; egress ${r.egress.toFixed(2)}×`);
          } finally {
            await slow.setRate(slow.rate);
          }
        }
        if (lateS !== undefined) {
          const delays = nodes.map((_, i) => (i === nodes.length - 1 ? lateS * 1000 : 0));
          // The session starts without the late one (--min-receivers N-1), as a rack's stragglers would
          // find it: otherwise the barrier simply waits the 3 s for it.
          const r = await runOnce(t, nodes, `${t}-${extraN}-late`, delays, ['--min-receivers', String(extraN - 1)]);
          const late = r.perNode[r.perNode.length - 1];
          extras.push(`${t.padEnd(9)}  late: ${extraN} nodes, the last ${lateS} s late: it took ${late.toFixed(1)} s from its start = ${(late / t1).toFixed(2)} × T(1) (${t1.toFixed(1)} s)${r.fellBack[r.fellBack.length - 1] ? ' (took http at once)' : ''}; the others ${Math.max(...r.perNode.slice(0, -1)).toFixed(1)} s; egress ${r.egress.toFixed(2)}×`);
        }
      }
    } finally {
      await srv.close();
    }
    const http1 = results.find((r) => r.transport === 'http' && r.n === 1)?.s;
    console.log(`load average (1 min) at the start: ${loadStart[0].toFixed(2)}, at the end: ${os.loadavg()[0].toFixed(2)}; ${os.cpus().length} cores`);
    console.log(`image: ${(imageBytes / 2 ** 20).toFixed(1)} MiB (one incompressible layer); links ${values.rate} (tc tbf, both ends); multicast --max-bitrate ${maxBitrate}; torrent: ${values['web-seed-only'] ? 'web seed only' : `the server seeds as a peer${values['seed-upload-limit'] ? ` (at most ${values['seed-upload-limit']}B/s)` : ''}`}`);
    console.log(values['no-boot']
      ? 'boot environment: not downloaded (--no-boot)'
      : `boot environment: ${BOOT_DIR} (vmlinuz + initrd.img = ${(bootBytes / 2 ** 20).toFixed(1)} MiB a node, ${(bootBytes / imageBytes).toFixed(2)} × the image), fetched by every node over HTTP before its install; boot s is that phase, not in T(N)`);
    console.log('transport  nodes  all done s  T(N)/T(1)  T(N)/T_http(1)  egress/image  boot MiB/node  boot s  full egress/image  http fallbacks  load');
    for (const r of results) {
      const t1 = results.find((x) => x.transport === r.transport && x.n === 1)?.s;
      const ratio = t1 ? (r.s / t1).toFixed(2) : '-';
      const vsHttp = http1 ? (r.s / http1).toFixed(2) : '-';
      const bootPerNode = r.bootEgress / r.n / 2 ** 20;
      const full = r.egress + r.bootEgress / imageBytes;
      console.log(`${r.transport.padEnd(9)}  ${String(r.n).padStart(5)}  ${r.s.toFixed(1).padStart(10)}  ${ratio.padStart(9)}  ${vsHttp.padStart(14)}  ${r.egress.toFixed(2).padStart(12)}  ${bootPerNode.toFixed(1).padStart(13)}  ${r.bootS.toFixed(1).padStart(6)}  ${full.toFixed(2).padStart(17)}  ${String(r.fellBack).padStart(14)}  ${r.load.toFixed(1).padStart(4)}`);
    }
    for (const e of extras) console.log(e);
  } finally {
    await net.teardown();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack ?? e.message : e);
  process.exit(1);
});
