/**
 * Benchmark (not a test): download throughput of one blob from Ferry's server and from
 * nginx (sendfile, one worker, like Ferry's one process) serving the same file, with 1
 * and 16 concurrent curl clients. Each figure is the best of ROUNDS; the ratio
 * ferry/nginx is what to compare (absolute numbers depend on the machine's load).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, spawnTool } from '../../common/run.js';
import { waitFor } from '../../common/wait.js';
import { blobPath } from '../../common/protocol.js';
import { startServer } from '../../server/index.js';
import { BlobStore } from '../../server/store/blobs.js';

const sizeMiB = Number(process.argv[2] ?? 256);
const rounds = Number(process.argv[3] ?? 3);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** CPU seconds this process (the Ferry server) spent per GB served, summed over its rounds. */
const cpu = { s: 0, gb: 0 };

async function clients(url: string, n: number, token?: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const c0 = token ? process.cpuUsage() : undefined;
  const runs = Array.from({ length: n }, () =>
    run(['curl', '-sS', '--fail', '-o', '/dev/null', '-w', '%{size_download}', ...(token ? ['-H', `Authorization: Bearer ${token}`] : []), url], { quiet: true }),
  );
  const res = await Promise.all(runs);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const bytes = res.reduce((s, r) => s + Number(r.stdout), 0);
  if (bytes !== n * sizeMiB * 1024 * 1024) throw new Error(`clients received ${bytes} bytes, expected ${n * sizeMiB * 1024 * 1024}`);
  if (c0) {
    const c = process.cpuUsage(c0);
    cpu.s += (c.user + c.system) / 1e6;
    cpu.gb += bytes / 1e9;
  }
  return bytes / secs / 1e6;
}

/** Best of ROUNDS for both servers, alternating so that load changes hit both alike. */
async function bestPair(f: () => Promise<number>, g: () => Promise<number>): Promise<[number, number]> {
  let bf = 0, bg = 0;
  for (let i = 0; i < rounds; i++) {
    if (i % 2 === 0) {
      bf = Math.max(bf, await f());
      bg = Math.max(bg, await g());
    } else {
      bg = Math.max(bg, await g());
      bf = Math.max(bf, await f());
    }
  }
  return [bf, bg];
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-'));
  const dataDir = join(dir, 'data');
  let nginx: ReturnType<typeof spawnTool> | undefined;
  const srv = await startServer({ dataDir, listen: '127.0.0.1:0' });
  try {
    const store = new BlobStore(dataDir);
    async function* bytes() {
      for (let i = 0; i < sizeMiB; i++) yield randomBytes(1024 * 1024);
    }
    const { digest } = await store.ingest(bytes());
    const port = await freePort();
    mkdirSync(join(dir, 'nginx', 'logs'), { recursive: true });
    const conf = join(dir, 'nginx', 'nginx.conf');
    writeFileSync(
      conf,
      `worker_processes 1;
pid ${join(dir, 'nginx', 'nginx.pid')};
error_log ${join(dir, 'nginx', 'logs', 'error.log')} warn;
events { worker_connections 256; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path ${join(dir, 'nginx', 'tmp')};
  proxy_temp_path ${join(dir, 'nginx', 'tmp')};
  fastcgi_temp_path ${join(dir, 'nginx', 'tmp')};
  uwsgi_temp_path ${join(dir, 'nginx', 'tmp')};
  scgi_temp_path ${join(dir, 'nginx', 'tmp')};
  server {
    listen 127.0.0.1:${port};
    location /blobs/ { alias ${store.dir}/; }
  }
}
`,
    );
    nginx = spawnTool(['nginx', '-p', join(dir, 'nginx'), '-c', conf, '-g', 'daemon off; master_process off;'], { stdout: 'ignore' });
    nginx.child.stdin!.end();
    const nginxUrl = `http://127.0.0.1:${port}/blobs/${digest.slice(7)}`;
    await waitFor(() => run(['curl', '-sf', '-o', '/dev/null', '-r', '0-0', nginxUrl], { quiet: true }).then(() => true), { what: `nginx to answer on port ${port}`, timeoutMs: 10_000 });
    const ferryUrl = srv.url + blobPath(digest);
    const check = await run(['sh', '-c', `curl -sf -H "Authorization: Bearer $1" "$2" | sha256sum`, 'sh', srv.adminToken, ferryUrl], { quiet: true });
    if ('sha256:' + check.stdout.split(' ')[0] !== digest) throw new Error('ferry served other bytes than the blob');

    const load = (await run(['cat', '/proc/loadavg'], { quiet: true })).stdout.split(' ').slice(0, 3).join(' ');
    console.log(`load average before: ${load}`);
    console.log(`blob: ${sizeMiB} MiB, best of ${rounds} rounds, clients: curl; nginx ${ (await run(['nginx', '-v'], { quiet: true })).stderr.trim().replace('nginx version: ', '') } with sendfile, 1 worker`);
    console.log('clients  ferry MB/s  nginx MB/s  ratio ferry/nginx  ferry CPU s/GB');
    for (const n of [1, 16]) {
      cpu.s = cpu.gb = 0;
      const [f, g] = await bestPair(() => clients(ferryUrl, n, srv.adminToken), () => clients(nginxUrl, n));
      console.log(`${String(n).padStart(7)}  ${f.toFixed(0).padStart(10)}  ${g.toFixed(0).padStart(10)}  ${(f / g).toFixed(2).padStart(17)}  ${(cpu.s / cpu.gb).toFixed(3).padStart(14)}`);
    }
  } finally {
    if (nginx) {
      nginx.child.kill('SIGTERM');
      await nginx.done.catch(() => {});
    }
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
