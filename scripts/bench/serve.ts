/**
 * A `ferry serve` of the benches' own, in its own process as it is for real nodes (in the bench's
 * process it would share the installer's event loop and slow it): started on a free loopback
 * port, ready once it has written server.json, ended with SIGTERM.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnTool, stopSpawned } from '../../common/run.js';
import { waitFor } from '../../common/wait.js';

export interface BenchServer {
  url: string;
  adminToken: string;
  close(): Promise<void>;
}

export async function startBenchServer(dataDir: string): Promise<BenchServer> {
  fs.rmSync(path.join(dataDir, 'server.json'), { force: true });
  const serve = spawnTool(['node', 'build/ferry.mjs', 'serve', '--data', dataDir, '--listen', '127.0.0.1:0'], { stdout: 'ignore' });
  try {
    const info = await waitFor(() => {
      try {
        return JSON.parse(fs.readFileSync(path.join(dataDir, 'server.json'), 'utf8')) as { url: string };
      } catch {
        return undefined;
      }
    }, { what: 'the bench server to write server.json', timeoutMs: 30_000 });
    return { url: info.url, adminToken: fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim(), close: () => stopSpawned(serve) };
  } catch (e) {
    await stopSpawned(serve);
    throw e;
  }
}
