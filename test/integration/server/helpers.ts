/** Shared pieces of the server's integration tests: temp dirs, a running server, HTTP calls. */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { startServer, type RunningServer } from '../../../server/index.js';
import { DataDir } from '../../../server/context.js';

export function tempDir(prefix = 'ferry-srv-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export const LAYOUT = `<config>
  <disk dev="/dev/sda" label_type="gpt" unit_of_measurement="MB">
    <part num="1" size="*" p_type="primary" p_name="root" flags="-"/>
  </disk>
  <fsinfo line="10" real_dev="/dev/sda1" mp="/" fs="ext4" options="defaults" dump="1" pass="1"/>
</config>
`;

/** A small tree with a few files, for tests that need any image. */
export function smallTree(root: string, seed = 'a'): string {
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, 'etc', 'hostname'), `host-${seed}\n`);
  writeFileSync(join(root, 'data.bin'), Buffer.alloc(300_000, seed));
  return root;
}

export interface Harness {
  srv: RunningServer;
  data: DataDir;
  dataDir: string;
  tmp: string;
  close(): Promise<void>;
}

export async function harness(opts: { bootDir?: string; publicUrl?: string; lostAfterMs?: number } = {}): Promise<Harness> {
  const t = tempDir();
  const dataDir = join(t.dir, 'data');
  const srv = await startServer({ dataDir, listen: '127.0.0.1:0', bootDir: opts.bootDir, publicUrl: opts.publicUrl, lostAfterMs: opts.lostAfterMs });
  const data = new DataDir(dataDir);
  const h: Harness = {
    srv,
    data,
    dataDir,
    tmp: t.dir,
    async close() {
      data.close();
      // h.srv: a test may have restarted the server in between (FerryServer.restart).
      await h.srv.close();
      t.cleanup();
    },
  };
  return h;
}

export async function call(base: string, method: string, path: string, o: { token?: string; body?: unknown; rawBody?: string | Buffer; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
  let body: string | Buffer | undefined;
  if (o.body !== undefined) {
    body = JSON.stringify(o.body);
    headers['content-type'] ??= 'application/json';
  } else if (o.rawBody !== undefined) {
    body = o.rawBody;
    headers['content-type'] ??= 'application/json';
  }
  const r = await request(base + path, { method: method as any, headers, body });
  const buf = Buffer.from(await r.body.arrayBuffer());
  let json: any;
  try {
    json = JSON.parse(buf.toString('utf8'));
  } catch {
    json = undefined;
  }
  return { status: r.statusCode, headers: r.headers, buf, text: buf.toString('utf8'), json };
}
