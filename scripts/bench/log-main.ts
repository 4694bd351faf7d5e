/**
 * Benchmark of the server's log (scripts/bench/log): the cost of one log line per request and
 * per boot decision. Two servers on loopback in this process, one without a log and one with the
 * JSON log (written to a file, as a log collector would read it), answer the same boot requests
 * (GET /boot/ipxe?mac= of a known node: a database read, a decision, a log line each) from 8
 * concurrent clients; rounds alternate between them and the ratio logged/unlogged is printed.
 * Bounded: ROUNDS × REQUESTS requests per server, loopback only.
 */
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { startServer, type RunningServer } from '../../server/index.js';
import { DataDir } from '../../server/context.js';
import { addNode } from '../../server/db/inventory.js';

const ROUNDS = 4;
const REQUESTS = Number(process.argv[2] ?? 2000);
const CLIENTS = 8;
const MAC = '52:54:00:be:00:01';

const tmp = mkdtempSync(join(tmpdir(), 'ferry-bench-log-'));
const logFile = join(tmp, 'server.log');
const out = createWriteStream(logFile);
async function server(name: string, log: boolean): Promise<RunningServer> {
  const dataDir = join(tmp, name);
  const srv = await startServer({ dataDir, listen: '127.0.0.1:0', ...(log ? { log: { format: 'json' as const, destination: out } } : {}) });
  const d = new DataDir(dataDir);
  addNode(d, 'bench1', { macs: [MAC] }, 'bench');
  d.close();
  return srv;
}

async function round(srv: RunningServer): Promise<number> {
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (next < REQUESTS) {
        next++;
        const r = await request(`${srv.url}/boot/ipxe?mac=${MAC}`);
        await r.body.text();
        if (r.statusCode !== 200) throw new Error(`status ${r.statusCode}`);
      }
    }),
  );
  return REQUESTS / (Number(process.hrtime.bigint() - t0) / 1e9);
}

const logged = await server('logged', true);
const plain = await server('plain', false);
try {
  await round(plain);
  await round(logged); // warm-up
  const a: number[] = [];
  const b: number[] = [];
  // Alternating which goes first (ABBA), so a trend in the machine's load weighs on both alike.
  for (let i = 0; i < ROUNDS; i++) {
    if (i % 2) {
      b.push(await round(logged));
      a.push(await round(plain));
    } else {
      a.push(await round(plain));
      b.push(await round(logged));
    }
  }
  const median = (x: number[]) => [...x].sort((p, q) => p - q)[x.length >> 1];
  const ma = median(a);
  const mb = median(b);
  await new Promise<void>((r) => out.end(r));
  process.stdout.write(`requests per second (median of ${ROUNDS} rounds of ${REQUESTS}, ${CLIENTS} clients): no log ${ma.toFixed(0)}, JSON log ${mb.toFixed(0)}; ratio logged/unlogged ${(mb / ma).toFixed(2)}; log ${(statSync(logFile).size / 1024).toFixed(0)} KiB\n`);
} finally {
  await plain.close();
  await logged.close();
  rmSync(tmp, { recursive: true, force: true });
}
