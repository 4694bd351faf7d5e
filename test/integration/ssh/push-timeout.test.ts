/**
 * `ferry push` cut by `--timeout` in the middle of the transfer (a link shaped to 8 Mbit/s, a
 * file that needs several seconds on it): the temporary file beside DEST was there while the
 * file was being written, and is gone once push has given up; DEST keeps its old content.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../common/run.js';
import { createNetwork, type Network } from '../../harness/netns.js';
import { startSshd, type Sshd } from '../../harness/sshd.js';

const FERRY = join(import.meta.dirname, '..', '..', '..', 'bin', 'ferry');

describe('ferry push cut by --timeout', () => {
  let net: Network;
  let data: string;
  let work: string;
  let sshd: Sshd[] = [];
  const ferry = (args: string[], okCodes = [0]) => run([FERRY, ...args], { okCodes, timeoutMs: 90_000, quiet: true, env: { FERRY_LOG_LEVEL: 'warn', FERRY_DATA: data } });

  beforeAll(async () => {
    data = mkdtempSync(join(tmpdir(), 'ferry-pusht-'));
    work = mkdtempSync(join(tmpdir(), 'ferry-pusht-work-'));
    net = await createNetwork({ nodes: 1, rate: '8mbit', server: 'host' });
    const pub = (await ferry(['ssh-key'])).stdout;
    sshd = await Promise.all(net.nodes.map((n) => startSshd(n, { authorizedKeys: pub })));
    await ferry(['node', 'add', 'slow01', '--mac', '02:ae:00:00:00:01', '--address', net.nodes[0].ip, '--host-key', sshd[0].fingerprint]);
  }, 120_000);

  afterAll(async () => {
    await net?.teardown();
    for (const d of [data, work]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('leaves no temporary file and the old DEST', async () => {
    const src = join(work, 'big');
    // Random bytes: SSH compression cannot shrink them below the link's pace.
    writeFileSync(src, randomBytes(12 << 20));
    const dir = join(work, 'dest');
    mkdirSync(dir);
    writeFileSync(join(dir, 'big'), 'old\n');
    const seen = new Set<string>();
    let watching = true;
    const watch = (async () => {
      while (watching) {
        for (const f of readdirSync(dir)) seen.add(f);
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    const started = Date.now();
    const r = await ferry(['push', 'slow01', src, dir + '/', '--timeout', '4', '--json'], [255]);
    watching = false;
    await watch;
    const j = JSON.parse(r.stdout) as { node: string; outcome: string }[];
    expect(j[0]).toMatchObject({ node: 'slow01', outcome: 'timeout' });
    // The transfer had begun: its temporary file was there.
    expect([...seen].some((f) => /^\.big\.ferry-push-[0-9a-f]{12}$/.test(f))).toBe(true);
    expect(readdirSync(dir)).toEqual(['big']);
    expect(readFileSync(join(dir, 'big'), 'utf8')).toBe('old\n');
    expect(Date.now() - started).toBeLessThan(60_000);
  }, 120_000);
});
