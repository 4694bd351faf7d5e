/**
 * Benchmark (issue 15): `ferry image capture` of a tree over SSH against the plain pipeline
 * `ssh HOST tar -c … | zstd -3 -T1 > /dev/null` of the same tree with the same tar options, in
 * the same run, on a namespace node running Debian's sshd (test/harness/netns.ts, 10gbit link,
 * so the pipeline, not the link, sets the pace). Prints both times (best of --runs) and the ratio
 * (goal: at most 1.1).
 *
 *   scripts/bench/capture [--mib 128] [--files 2000] [--runs 2] [--profile DIR]
 *
 * --profile DIR runs each capture under `node --cpu-prof` (the profiles land in DIR).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { run, spawnTool } from '../../common/run.js';
import { captureArgv } from '../../server/ssh/capture.js';
import { shellCommand } from '../../server/ssh/target.js';
import { createNetwork } from '../../test/harness/netns.js';
import { startSshd } from '../../test/harness/sshd.js';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '128' }, files: { type: 'string', default: '2000' }, runs: { type: 'string', default: '2' }, profile: { type: 'string' } } });
const mib = Number(values.mib);
const files = Number(values.files);
const runs = Number(values.runs);
if (!(mib > 0 && mib <= 4096) || !(files >= 0 && files <= 200_000) || !(runs >= 1 && runs <= 10)) throw new Error('--mib 1…4096, --files 0…200000, --runs 1…10');
const FERRY = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'ferry');

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-capture-'));
  const data = path.join(work, 'data');
  const env = { FERRY_DATA: data, FERRY_LOG_LEVEL: 'warn' };
  const net = await createNetwork({ nodes: 1, rate: '10gbit', server: 'host' });
  try {
    const node = net.nodes[0];
    const pub = (await run([FERRY, 'ssh-key'], { env, quiet: true })).stdout;
    const sshd = await startSshd(node, { authorizedKeys: pub });
    const tree = path.join(node.dir, 'tree');
    // Half incompressible, half text-like, and many small files.
    fs.mkdirSync(path.join(tree, 'small'), { recursive: true });
    fs.writeFileSync(path.join(tree, 'random.bin'), randomBytes((mib << 20) / 2));
    const line = Buffer.from('The quick brown fox jumps over the lazy dog 0123456789\n');
    fs.writeFileSync(path.join(tree, 'text.log'), Buffer.concat(Array((((mib << 20) / 2) / line.length) | 0).fill(line)));
    for (let i = 0; i < files; i++) fs.writeFileSync(path.join(tree, 'small', `f${i}`), `file ${i}\n`.repeat(1 + (i % 50)));
    const knownHosts = path.join(work, 'known_hosts');
    fs.writeFileSync(knownHosts, `${node.ip} ${fs.readFileSync(`${sshd.hostKeyFile}.pub`, 'utf8').split(' ').slice(0, 2).join(' ')}\n`);
    const remote = `LC_ALL=C ${shellCommand(captureArgv(tree, []))}`;

    const baseline = async () => {
      const t = Date.now();
      const ssh = spawnTool(['ssh', '-i', path.join(data, 'ssh', 'id_ed25519'), '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', `root@${node.ip}`, remote], { quiet: true });
      const z = spawnTool(['zstd', '-3', '-T1', '-q', '-c'], { quiet: true, stdout: 'ignore' });
      ssh.child.stdin!.end();
      ssh.child.stdout!.pipe(z.child.stdin!);
      await Promise.all([ssh.done, z.done]);
      return Date.now() - t;
    };
    let n = 0;
    const ferry = async () => {
      const t = Date.now();
      const cmd = values.profile ? ['node', '--cpu-prof', `--cpu-prof-dir=${path.resolve(values.profile)}`, path.join(path.dirname(FERRY), '..', 'build', 'ferry.mjs')] : [FERRY];
      await run([...cmd, 'image', 'capture', `bench${n++}`, '--from', node.ip, '--root', tree, '--no-default-excludes', ...(n === 1 ? ['--host-key', sshd.fingerprint] : [])], { env, quiet: true, timeoutMs: 600_000 });
      return Date.now() - t;
    };
    const b: number[] = [];
    const f: number[] = [];
    for (let i = 0; i < runs; i++) {
      b.push(await baseline());
      f.push(await ferry());
    }
    const bb = Math.min(...b);
    const fb = Math.min(...f);
    console.log(`tree: ${mib} MiB + ${files} small files; runs: ${runs} (best of each); load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    console.log(`ssh tar -c | zstd -3   ${(bb / 1000).toFixed(2)} s   (runs: ${b.map((x) => (x / 1000).toFixed(2)).join(', ')})`);
    console.log(`ferry image capture    ${(fb / 1000).toFixed(2)} s   (runs: ${f.map((x) => (x / 1000).toFixed(2)).join(', ')})`);
    console.log(`ratio ferry/baseline   ${(fb / bb).toFixed(2)}   (goal <= 1.1)`);
  } finally {
    await net.teardown();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
