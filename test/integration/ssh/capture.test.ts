/**
 * `ferry image capture --root` from a real OpenSSH server (Debian's sshd in a namespace node of
 * test/harness/netns.ts): a tree with every file kind (helpers/trees.ts, plus a POSIX ACL) is
 * captured through the remote's GNU tar, exported again and compared attribute by attribute with
 * the source. A wrong --host-key is refused before anything is sent, and a connection that drops
 * mid-capture leaves no image and no blob.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, spawnTool } from '../../../common/run.js';
import { createNetwork, type Network } from '../../harness/netns.js';
import { startSshd, type Sshd } from '../../harness/sshd.js';
import { describeTree, makeKitchenSink } from '../helpers/trees.js';

const FERRY = join(import.meta.dirname, '..', '..', '..', 'bin', 'ferry');
// A POSIX access ACL (user 1234 may read) written as the raw xattr, since the acl package is not
// installed: header v2, then (tag, perm, id) for USER_OBJ rw, USER 1234 r, GROUP_OBJ r, MASK r, OTHER -.
const ACL = '0x02000000' + '01000600ffffffff' + '02000400d2040000' + '04000400ffffffff' + '10000400ffffffff' + '20000000ffffffff';

describe('ferry image capture over SSH', () => {
  let net: Network;
  let data: string;
  let src: string;
  let sshd: Sshd;
  const env = () => ({ FERRY_LOG_LEVEL: 'warn', FERRY_DATA: data });
  const ferry = (args: string[], okCodes = [0]) => run([FERRY, ...args], { okCodes, timeoutMs: 120_000, quiet: true, env: env() });
  const blobs = () => (fs.existsSync(join(data, 'blobs/sha256')) ? fs.readdirSync(join(data, 'blobs/sha256')).sort() : []);

  beforeAll(async () => {
    data = fs.mkdtempSync(join(tmpdir(), 'ferry-capture-'));
    net = await createNetwork({ nodes: 1, rate: '1gbit', server: 'host' });
    const pub = (await ferry(['ssh-key'])).stdout;
    sshd = await startSshd(net.nodes[0], { authorizedKeys: pub });
    src = join(net.nodes[0].dir, 'golden');
    fs.mkdirSync(src);
    await makeKitchenSink(src);
    fs.writeFileSync(join(src, 'acl-file'), 'acl');
    fs.chmodSync(join(src, 'acl-file'), 0o640);
    await run(['setfattr', '-n', 'system.posix_acl_access', '-v', ACL, join(src, 'acl-file')]);
    // Excluded by default (kept as empty directories) and by --exclude.
    fs.mkdirSync(join(src, 'proc'));
    fs.writeFileSync(join(src, 'proc/cpuinfo'), 'not in the image');
    fs.writeFileSync(join(src, 'tmp/scratch'), 'not in the image');
    fs.mkdirSync(join(src, 'var/cache/apt'), { recursive: true });
    fs.writeFileSync(join(src, 'var/cache/apt/pkgcache.bin'), 'not in the image');
    // A nested tmp/ below the root is not the root's /tmp: it stays.
    fs.mkdirSync(join(src, 'srv/app/tmp'), { recursive: true });
    fs.writeFileSync(join(src, 'srv/app/tmp/keep'), 'kept');
  }, 120_000);

  afterAll(async () => {
    await net?.teardown();
    if (data) fs.rmSync(data, { recursive: true, force: true });
  });

  it('refuses a host key that is not the machine\'s, storing nothing', async () => {
    const wrong = 'SHA256:' + 'B'.repeat(43);
    const r = await ferry(['image', 'capture', 'golden', '--from', `root@${net.nodes[0].ip}`, '--root', src, '--host-key', wrong], [1]);
    expect(r.stderr).toContain('FERRY_E_SSH_HOST_KEY_MISMATCH');
    expect(r.stderr).toContain(sshd.fingerprint);
    const unknown = await ferry(['image', 'capture', 'golden', '--from', net.nodes[0].ip, '--root', src], [1]);
    expect(unknown.stderr).toContain('FERRY_E_SSH_HOST_KEY_UNKNOWN');
    expect(JSON.parse((await ferry(['image', 'ls', '--json'])).stdout)).toEqual([]);
    expect(blobs()).toEqual([]);
  }, 60_000);

  it('captures every file kind with its attributes, minus the excludes, as `image export` shows', async () => {
    const r = await ferry(['image', 'capture', 'golden', '--from', `root@${net.nodes[0].ip}:22`, '--root', src, '--host-key', sshd.fingerprint, '--exclude', '/var/cache/apt/*']);
    expect(r.stdout).toMatch(/^captured golden@1 sha256:[0-9a-f]{64} from /);
    expect(r.stderr).toMatch(/captured [\d.]+ \w+, \d+ entries, /);
    const out = join(data, 'export');
    await ferry(['image', 'export', 'golden', out, '--devices']);
    // What the excludes keep out, and what they must not touch.
    expect(fs.readdirSync(join(out, 'proc'))).toEqual([]);
    expect(fs.readdirSync(join(out, 'tmp'))).toEqual([]);
    expect(fs.readdirSync(join(out, 'var/cache/apt'))).toEqual([]);
    expect(fs.readFileSync(join(out, 'srv/app/tmp/keep'), 'utf8')).toBe('kept');
    for (const f of ['proc/cpuinfo', 'tmp/scratch', 'var/cache/apt/pkgcache.bin']) fs.rmSync(join(src, f));
    const want = await describeTree(src, { skipDirTimes: true });
    const got = await describeTree(out, { skipDirTimes: true });
    // The export's root is 0700 by design (exportImage); everything else must match.
    delete want.entries['.'];
    delete got.entries['.'];
    expect(got).toEqual(want);
    expect(got.entries['acl-file'].xattrs).toContain('system.posix_acl_access');
    // The recorded key is used next time without --host-key.
    const again = await ferry(['image', 'capture', 'golden2', '--from', net.nodes[0].ip, '--root', join(src, 'etc')]);
    expect(again.stdout).toMatch(/^captured golden2@1 /);
  }, 120_000);

  it('a connection that drops mid-capture leaves no image and no blob', async () => {
    const big = join(net.nodes[0].dir, 'big');
    fs.mkdirSync(big);
    // Incompressible, so the shaped link is the bottleneck: about 12 s at 16 Mbit/s.
    fs.writeFileSync(join(big, 'data'), randomBytes(24 << 20));
    await net.nodes[0].setRate('16mbit');
    const before = blobs();
    const p = spawnTool([FERRY, 'image', 'capture', 'dropped', '--from', net.nodes[0].ip, '--root', big], { quiet: true, env: env(), okCodes: [0, 1] });
    let stderr = '';
    p.child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    await net.waitFor(() => /captured [1-9][\d.]* (KiB|MiB)/.test(stderr), { what: 'the capture to report progress', timeoutMs: 30_000 });
    await net.nodes[0].killAll();
    const res = await p.done;
    expect(res.code).toBe(1);
    expect(stderr).toContain('FERRY_E_CAPTURE_DROPPED');
    expect(JSON.parse((await ferry(['image', 'ls', '--json'])).stdout).map((i: { name: string }) => i.name)).not.toContain('dropped');
    expect(blobs()).toEqual(before);
    expect(fs.readdirSync(join(data, 'tmp')).filter((f) => !f.startsWith('.'))).toEqual([]);
  }, 90_000);
});
