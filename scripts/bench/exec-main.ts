/**
 * Benchmark (issue 15): `ferry exec @all -- true` on N namespace nodes (test/harness/netns.ts),
 * each running Debian's sshd with its own host key (test/harness/sshd.ts, the set-up of the ssh
 * integration tests), against `ferry exec n00 -- true` on one of them, in the same run. Both are
 * whole CLI runs (start, database, key, connections, collation). Prints the best of --runs for
 * each and the ratio (goal: at most 2).
 *
 *   scripts/bench/exec [--nodes 32] [--runs 3]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { run } from '../../common/run.js';
import { createNetwork } from '../../test/harness/netns.js';
import { startSshdAll } from '../../test/harness/sshd.js';

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '32' }, runs: { type: 'string', default: '3' } } });
const nodes = Number(values.nodes);
const runs = Number(values.runs);
if (!(nodes >= 2 && nodes <= 200) || !(runs >= 1 && runs <= 10)) throw new Error('--nodes 2…200, --runs 1…10');
const FERRY = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'ferry');

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-exec-'));
  const env = { FERRY_DATA: path.join(work, 'data'), FERRY_LOG_LEVEL: 'warn' };
  const ferry = (args: string[]) => run([FERRY, ...args], { env, quiet: true, timeoutMs: 300_000 });
  const net = await createNetwork({ nodes, rate: '1gbit', server: 'host' });
  try {
    const pub = (await ferry(['ssh-key'])).stdout;
    const sshd = await startSshdAll(net.nodes, { authorizedKeys: pub });
    const names = net.nodes.map((_, i) => `n${String(i).padStart(2, '0')}`);
    for (const [i, n] of net.nodes.entries()) {
      const mac = `02:be:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
      await ferry(['node', 'add', names[i], '--mac', mac, '--address', n.ip, '--host-key', sshd[i].fingerprint, '--group', 'all']);
    }
    const time = async (sel: string, want: RegExp) => {
      const t = Date.now();
      const r = await ferry(['exec', sel, '--', 'true']);
      const ms = Date.now() - t;
      if (!want.test(r.stdout)) throw new Error(`ferry exec ${sel}: unexpected output:\n${r.stdout}`);
      return ms;
    };
    const one: number[] = [];
    const all: number[] = [];
    const allHead = new RegExp(`^n\\[00-${String(nodes - 1).padStart(2, '0')}\\] \\(${nodes}\\)$`, 'm');
    for (let i = 0; i < runs; i++) {
      one.push(await time(names[0], /^n00 \(1\)$/m));
      all.push(await time('@all', allHead));
    }
    const a = Math.min(...one);
    const b = Math.min(...all);
    const s = (x: number[]) => x.map((v) => (v / 1000).toFixed(2)).join(', ');
    console.log(`nodes: ${nodes}; runs: ${runs} (best of each); load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    console.log(`ferry exec n00 -- true        ${(a / 1000).toFixed(2)} s   (runs: ${s(one)})`);
    console.log(`ferry exec @all -- true       ${(b / 1000).toFixed(2)} s   (runs: ${s(all)})`);
    console.log(`ratio ${nodes} nodes / 1 node     ${(b / a).toFixed(2)}   (goal <= 2)`);
  } finally {
    await net.teardown();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
