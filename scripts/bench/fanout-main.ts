/**
 * Benchmark (issue 13): install one image on N nodes at once, by each transport, in network
 * namespaces on one bridge (test/harness/netns.ts: every link shaped with tc tbf to --rate; the
 * server is this process, on the host's end of its own shaped link). Every node runs the real
 * `ferry install --server URL --token T --root DIR`. Per transport and N it prints the time until
 * the last node is done, T(N)/T(1) of that transport, T(N) over HTTP's T(1) (the baseline,
 * measured in the same run), and the server's egress (tx bytes counted on its link) divided by
 * the image's size. The boot environment is not downloaded here (`--root` installs): add its
 * size once per node to the HTTP egress, and once per session with a fan-out boot.
 *
 *   scripts/bench/fanout [--nodes 1,4,8] [--transport http,multicast] [--rate 100mbit] [--mib 64]
 *                        [--max-bitrate RATE (multicast; default 90 % of --rate)] [--max-wait 30]
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { run } from '../../common/run.js';
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
const INSTALL_TIMEOUT_S = Math.max(120, Math.ceil(((mib * 8 * 1.1) / Number(rateM[1])) * Math.max(...counts) * 2));

const FERRY = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'ferry');

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-fanout-'));
  const data = path.join(work, 'data');
  const ferry = (args: string[]) => run([FERRY, ...args, '--data', data], { quiet: true, timeoutMs: 300_000 });
  const maxN = Math.max(...counts);
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
    const srv = await startServer({ dataDir: data, listen: `${net.server.ip}:0`, multicast: { interface: net.server.ifname } });
    const results: { transport: TransportKind; n: number; s: number; egress: number; fellBack: number }[] = [];
    try {
      for (const t of transports) {
        for (const n of counts) {
          const nodes = net.nodes.slice(0, n);
          const extra = t === 'multicast' ? ['--max-bitrate', maxBitrate, '--max-wait', values['max-wait']!] : [];
          const armed = JSON.parse((await ferry(['deploy', ...nodes.map((x) => x.name), '--transport', t, ...extra, '--json'])).stdout).deployments as { id: number; token: string }[];
          const before = await net.server.counters();
          const t0 = Date.now();
          if (process.env.FERRY_BENCH_DEBUG) process.stderr.write(`  start ${new Date(t0).toISOString().slice(11, 23)}\n`);
          const procs = nodes.map((x, i) => {
            const root = path.join(x.dir, `root-${armed[i].id}`);
            fs.mkdirSync(root);
            return x.spawn(['timeout', String(INSTALL_TIMEOUT_S), FERRY, 'install', '--server', srv.url, '--token', armed[i].token, '--root', root, '--no-initramfs'], { label: `install-${t}-${n}` });
          });
          const exits = await Promise.all(procs.map((p) => p.exited));
          const s = (Date.now() - t0) / 1000;
          const after = await net.server.counters();
          exits.forEach((x, i) => {
            if (x.code !== 0) throw new Error(`${t} with ${n} nodes: ${nodes[i].name} failed:\n${procs[i].output.slice(-2000)}`);
          });
          let fellBack = 0;
          for (const a of armed) {
            const r = await fetch(`${srv.url}/api/v1/admin/deployments/${a.id}`, { headers: { authorization: `Bearer ${srv.adminToken}` } });
            const body = (await r.json()) as { events: { phase: string; state: string; ts?: string; message?: string; details?: { fallback?: string } }[] };
            if (process.env.FERRY_BENCH_DEBUG) for (const e of body.events) if (e.phase === 'layers' || e.phase === 'config') process.stderr.write(`  d${a.id} ${e.ts?.slice(11, 23)} ${e.phase} ${e.state} ${(e.message ?? '').slice(0, 60)}\n`);
            fellBack += body.events.filter((e) => e.state === 'warning' && e.details?.fallback === 'http').length;
          }
          results.push({ transport: t, n, s, egress: (after.txBytes - before.txBytes) / imageBytes, fellBack });
          for (const x of nodes) fs.rmSync(path.join(x.dir, `root-${armed[nodes.indexOf(x)].id}`), { recursive: true, force: true });
          process.stderr.write(`[bench] ${t} ${n} node(s): ${s.toFixed(1)} s\n`);
        }
      }
    } finally {
      await srv.close();
    }
    const http1 = results.find((r) => r.transport === 'http' && r.n === 1)?.s;
    console.log(`load average before: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; ${os.cpus().length} cores`);
    console.log(`image: ${(imageBytes / 2 ** 20).toFixed(1)} MiB (one incompressible layer); links ${values.rate} (tc tbf, both ends); multicast --max-bitrate ${maxBitrate}`);
    console.log('transport  nodes  all done s  T(N)/T(1)  T(N)/T_http(1)  egress/image  http fallbacks');
    for (const r of results) {
      const t1 = results.find((x) => x.transport === r.transport && x.n === 1)?.s;
      const ratio = t1 ? (r.s / t1).toFixed(2) : '-';
      const vsHttp = http1 ? (r.s / http1).toFixed(2) : '-';
      console.log(`${r.transport.padEnd(9)}  ${String(r.n).padStart(5)}  ${r.s.toFixed(1).padStart(10)}  ${ratio.padStart(9)}  ${vsHttp.padStart(14)}  ${r.egress.toFixed(2).padStart(12)}  ${String(r.fellBack).padStart(14)}`);
    }
  } finally {
    await net.teardown();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack ?? e.message : e);
  process.exit(1);
});
