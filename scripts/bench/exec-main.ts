/**
 * Benchmark (issue 15): `ferry exec @all -- true` on N namespace nodes (test/harness/netns.ts),
 * each running Debian's sshd with its own host key (test/harness/sshd.ts, the set-up of the ssh
 * integration tests), against `ferry exec n00 -- true` on one of them, in the same run. Both are
 * whole CLI runs (start, database, key, connections, collation). Prints the best of --runs for
 * each and the ratio (goal: at most 2). The namespace nodes share this machine's cores, so each
 * sshd's own work (a re-exec per connection, key exchange, the login shell) is paid 32 times on
 * the same CPUs: the same fan-out with OpenSSH's client (32 `ssh` processes at once against one)
 * is measured in the same run as the test bed's own ratio, the floor no client can beat here.
 *
 *   scripts/bench/exec [--nodes 32] [--runs 3] [--profile DIR]
 *
 * --profile DIR runs each `ferry exec` under `node --cpu-prof` (the profiles land in DIR).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { run, spawnTool } from '../../common/run.js';
import { createNetwork } from '../../test/harness/netns.js';
import { startSshdAll } from '../../test/harness/sshd.js';

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '32' }, runs: { type: 'string', default: '3' }, profile: { type: 'string' } } });
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
    const cmd = values.profile ? ['node', '--cpu-prof', `--cpu-prof-dir=${path.resolve(values.profile)}`, path.join(path.dirname(FERRY), '..', 'build', 'ferry.mjs')] : [FERRY];
    // ferry exec exits 0 only when the command ran and exited 0 on every selected node.
    const time = async (sel: string, count: number) => {
      const t = Date.now();
      const r = await run([...cmd, 'exec', sel, '--json', '--', 'true'], { env, quiet: true, timeoutMs: 300_000 });
      const ms = Date.now() - t;
      const got = JSON.parse(r.stdout) as unknown[];
      if (!Array.isArray(got) || got.length !== count) throw new Error(`ferry exec ${sel}: ${count} results expected:\n${r.stdout.slice(0, 2000)}`);
      return ms;
    };
    const knownHosts = path.join(work, 'known_hosts');
    fs.writeFileSync(knownHosts, net.nodes.map((n, i) => `${n.ip} ${fs.readFileSync(`${sshd[i].hostKeyFile}.pub`, 'utf8').split(' ').slice(0, 2).join(' ')}\n`).join(''));
    const openssh = async (count: number) => {
      const t = Date.now();
      await Promise.all(net.nodes.slice(0, count).map((n) => spawnTool(['ssh', '-i', path.join(env.FERRY_DATA, 'ssh', 'id_ed25519'), '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', `root@${n.ip}`, 'true'], { quiet: true, stdout: 'ignore' }).done));
      return Date.now() - t;
    };
    const one: number[] = [];
    const all: number[] = [];
    const sshOne: number[] = [];
    const sshAll: number[] = [];
    for (let i = 0; i < runs; i++) {
      one.push(await time(names[0], 1));
      all.push(await time('@all', nodes));
      sshOne.push(await openssh(1));
      sshAll.push(await openssh(nodes));
    }
    const a = Math.min(...one);
    const b = Math.min(...all);
    const s = (x: number[]) => x.map((v) => (v / 1000).toFixed(2)).join(', ');
    console.log(`nodes: ${nodes}; runs: ${runs} (best of each); load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    console.log(`ferry exec n00 -- true        ${(a / 1000).toFixed(2)} s   (runs: ${s(one)})`);
    console.log(`ferry exec @all -- true       ${(b / 1000).toFixed(2)} s   (runs: ${s(all)})`);
    console.log(`ratio ${nodes} nodes / 1 node     ${(b / a).toFixed(2)}   (goal <= 2)`);
    const c = Math.min(...sshOne);
    const d = Math.min(...sshAll);
    console.log(`ssh HOST true, 1 node        ${(c / 1000).toFixed(2)} s   (runs: ${s(sshOne)})`);
    console.log(`ssh HOST true, ${nodes} at once    ${(d / 1000).toFixed(2)} s   (runs: ${s(sshAll)})`);
    console.log(`ratio for OpenSSH (test bed)  ${(d / c).toFixed(2)}`);
  } finally {
    await net.teardown();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
