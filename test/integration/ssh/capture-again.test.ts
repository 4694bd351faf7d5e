/**
 * `ferry image capture` beyond the tree (issue 15): the disk layout read over the same SSH
 * connection (layout/gather.ts, the reader of `ferry layout capture`) and stored beside the image
 * version, and capturing an existing image's machine again as one difference layer (the diff code
 * of `ferry image commit`). Debian's sshd in a namespace node (test/harness/sshd.ts); the node
 * shares the host's file system, so its "disk" is a loop device the test partitions.
 */
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../common/run.js';
import { parseBlkidExport, tableFromLsblk } from '../../../layout/gather.js';
import { parsePartedMachine } from '../../../layout/capture.js';
import { createNetwork, type Network } from '../../harness/netns.js';
import { startSshd, type Sshd } from '../../harness/sshd.js';
import { Scratch } from '../layout-helpers.js';
import { describeTree, makeKitchenSink } from '../helpers/trees.js';

const FERRY = join(import.meta.dirname, '..', '..', '..', 'bin', 'ferry');

describe('ferry image capture: layout and difference layers', () => {
  let net: Network;
  let data: string;
  let src: string;
  let sshd: Sshd;
  let scratch: Scratch;
  let disk: string;
  const env = () => ({ FERRY_LOG_LEVEL: 'warn', FERRY_DATA: data });
  const ferry = (args: string[], okCodes = [0]) => run([FERRY, ...args], { okCodes, timeoutMs: 120_000, quiet: true, env: env() });
  const json = async (args: string[]) => JSON.parse((await ferry([...args, '--json'])).stdout);

  beforeAll(async () => {
    data = fs.mkdtempSync(join(tmpdir(), 'ferry-capture2-'));
    scratch = new Scratch();
    net = await createNetwork({ nodes: 1, rate: '1gbit', server: 'host' });
    src = join(net.nodes[0].dir, 'golden');
    fs.mkdirSync(src);
    await makeKitchenSink(src);
    // The machine's disk: GPT, an ESP and a data partition to the end, ext4 mounted inside the tree.
    disk = (await scratch.loop(256 << 20)).dev;
    await run(['sgdisk', '-n', '1:1M:+32M', '-t', '1:ef00', '-c', '1:esp', '-n', '2:0:0', '-t', '2:8300', '-c', '2:root', disk]);
    await run(['partx', '-u', disk]).catch(() => {});
    await run(['udevadm', 'settle']).catch(() => {});
    await run(['mkfs.vfat', '-F', '32', '-n', 'ESP', `${disk}p1`]);
    await run(['mkfs.ext4', '-q', '-F', '-L', 'data', `${disk}p2`]);
    fs.mkdirSync(join(src, 'srv/data'), { recursive: true });
    fs.mkdirSync(join(src, 'boot/efi'), { recursive: true });
    await run(['mount', `${disk}p2`, join(src, 'srv/data')]);
    const uuid = (await run(['blkid', '-p', '-s', 'UUID', '-o', 'value', `${disk}p1`])).stdout.trim();
    fs.writeFileSync(join(src, 'etc/fstab'), `UUID=${uuid} /boot/efi vfat umask=0077,shortname=winnt 0 2\n`);
    // After the mount: each `ip netns exec` copies the mounts it starts with.
    sshd = await startSshd(net.nodes[0], { authorizedKeys: (await ferry(['ssh-key'])).stdout });
  }, 120_000);

  afterAll(async () => {
    if (src) await run(['umount', join(src, 'srv/data')]).catch(() => {});
    await net?.teardown();
    await scratch?.cleanup();
    if (data) fs.rmSync(data, { recursive: true, force: true });
  });

  it('captures the layout over the same connection, the same XML `ferry layout capture` writes on the machine', async () => {
    const r = await ferry(['image', 'capture', 'golden', '--from', net.nodes[0].ip, '--root', src, '--host-key', sshd.fingerprint, '--layout-disk', disk]);
    const path = join(data, 'layouts', 'golden@1.xml');
    expect(r.stdout).toContain(`layout: ${path} (ferry node add NAME --mac MAC --image golden@1 --layout ${path})`);
    expect((fs.statSync(path).mode & 0o777).toString(8)).toBe('600');
    const xml = fs.readFileSync(path, 'utf8');
    const local = (await ferry(['layout', 'capture', '--disk', disk, '--root', src])).stdout;
    expect(xml.split('\n').slice(1)).toEqual(local.split('\n').slice(1));
    expect(xml).toMatch(/^<!-- Disk layout captured by ferry image capture from [\d.]+:22\. -->/);
    expect(xml).toContain(`<disk dev="${disk}" label_type="gpt"`);
    expect(xml).toMatch(/<part num="1" size="32" p_type="primary" p_name="esp" flags="[a-z_,]*esp[a-z_,]*" \/>/);
    // sgdisk ends the last partition at the last usable sector, not on a MiB: its size is kept exactly.
    expect(xml).toMatch(/<part num="2" size="\d+B?" p_type="primary" p_name="root" \/>/);
    // Mounted inside the tree now, and named by the tree's fstab (with its options) though not mounted.
    expect(xml).toMatch(/label="data" mp="\/srv\/data" fs="ext4"/);
    expect(xml).toMatch(/label="ESP" mp="\/boot\/efi" fs="vfat" mkfs_opts="-F 32" options="umask=0077,shortname=winnt"/);
    // The file is what `ferry node add --layout` takes.
    await ferry(['node', 'add', 'web01', '--mac', '52:54:00:00:00:01', '--image', 'golden@1', '--layout', path]);
    expect((await ferry(['node', 'show', 'web01'])).stdout).toContain(`(${path})`);
    // A machine without parted: lsblk's own table (START, SIZE, types) is the same table.
    const parted = parsePartedMachine((await run(['parted', '-s', '-m', disk, 'unit', 'B', 'print'])).stdout)!;
    const lsblk = JSON.parse((await run(['lsblk', '-J', '-b', '-O', disk])).stdout).blockdevices[0];
    const probe = new Map<string, Record<string, string>>();
    for (const dev of [disk, `${disk}p1`, `${disk}p2`]) probe.set(dev, parseBlkidExport((await run(['blkid', '-p', '-o', 'export', dev], { okCodes: [0, 2] })).stdout));
    const t = tableFromLsblk(lsblk, (p) => probe.get(p) ?? {});
    expect(t.label).toBe('gpt');
    expect(t.partitions.map((p) => [p.number, p.start, p.size, p.name])).toEqual(parted.partitions.map((p) => [p.number, p.start, p.size, p.name]));
    expect(t.partitions[0].flags).toEqual(['esp']);
  }, 120_000);

  it('a --layout-disk without a partition table fails before anything is sent; without one named, a --root capture reads no disks', async () => {
    const bare = (await scratch.loop(32 << 20)).dev;
    const r = await ferry(['image', 'capture', 'other', '--from', net.nodes[0].ip, '--root', src, '--layout-disk', bare], [1]);
    expect(r.stderr).toContain('FERRY_E_CAPTURE_NO_TABLE');
    expect((await json(['image', 'ls'])).map((i: { name: string }) => i.name)).toEqual(['golden']);
    const plain = await ferry(['image', 'capture', 'other', '--from', net.nodes[0].ip, '--root', join(src, 'etc')]);
    expect(plain.stdout).not.toContain('layout:');
    expect(fs.existsSync(join(data, 'layouts', 'other@1.xml'))).toBe(false);
  }, 60_000);

  it('capturing the machine again stores only the difference, as one layer on top', async () => {
    const before = await json(['image', 'show', 'golden']);
    // Change the machine: a new file, a changed one, a removed one, a changed mode.
    fs.writeFileSync(join(src, 'new-file'), 'new\n');
    fs.appendFileSync(join(src, 'etc/fstab'), '# changed\n');
    const gone = fs.readdirSync(src).find((f) => fs.lstatSync(join(src, f)).isFile() && f !== 'new-file')!;
    fs.rmSync(join(src, gone));
    fs.chmodSync(join(src, 'etc'), 0o750);
    const r = await ferry(['image', 'capture', 'golden', '--from', net.nodes[0].ip, '--root', src]);
    expect(r.stdout).toMatch(/^captured golden@2 sha256:[0-9a-f]{64} from [\d.]+ onto golden@1: one layer of \d+ changed and 1 deleted entries/);
    const after = await json(['image', 'show', 'golden']);
    expect(after.layers).toHaveLength(before.layers.length + 1);
    expect(after.layers.slice(0, -1)).toEqual(before.layers);
    // Small: the new layer holds the changes, not the tree.
    expect(after.layers.at(-1).uncompressedSize).toBeLessThan(before.layers[0].uncompressedSize / 4);
    // Audited as a capture, not as a commit.
    const audit = (await json(['audit', '--limit', '1'])) as { action: string }[];
    expect(audit[0].action).toBe('image.capture');
    // The new version is the machine, attribute by attribute.
    const out = join(data, 'export');
    await ferry(['image', 'export', 'golden@2', out, '--devices']);
    const want = await describeTree(src, { skipDirTimes: true });
    const got = await describeTree(out, { skipDirTimes: true });
    delete want.entries['.'];
    delete got.entries['.'];
    // The mounted file system below srv/data is not walked (--one-file-system): its mount point stays, empty.
    for (const k of Object.keys(want.entries)) if (k.startsWith('srv/data/')) delete want.entries[k];
    delete want.entries['srv/data'];
    delete got.entries['srv/data'];
    expect(got).toEqual(want);
    expect(fs.existsSync(join(out, gone))).toBe(false);
    // Unchanged machine: nothing stored, no new version.
    const same = await ferry(['image', 'capture', 'golden', '--from', net.nodes[0].ip, '--root', src]);
    expect(same.stdout).toContain('no difference from golden@2: nothing stored');
    expect((await json(['image', 'show', 'golden'])).version).toBe(2);
    expect(fs.readdirSync(join(data, 'tmp')).filter((f) => !f.startsWith('.'))).toEqual([]);
  }, 180_000);
});
