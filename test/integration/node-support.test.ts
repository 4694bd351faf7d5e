/**
 * The node-side check of kernel modules and programs (issue 17), on a real loop device (root):
 * with a PATH that lacks mkfs.ext4 and a modprobe that fails to load vfat, `ferry layout apply
 * --yes` and the install's disks stage both refuse before the first write, list both problems
 * at once under one code, and the disk's bytes are unchanged.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTools } from '../../common/run.js';
import type { ProgressEvent } from '../../common/progress.js';
import { disks as disksStage, diskModule } from '../../installer/stages/disks.js';
import type { InstallContext } from '../../installer/stages/types.js';
import { ROOT, Scratch, sha256File } from './layout-helpers.js';

const MiB = 1024 ** 2;
// An ESP (vfat: this host's kernel has no vfat, and the fake modprobe refuses it) and an ext4 root
// (registered in /proc/filesystems here: no modprobe needed, but mkfs.ext4 is off the PATH).
const XML = '<config><disk dev="/dev/sda" label_type="gpt"><part num="1" size="32" p_name="esp" flags="esp"/><part num="2" size="*"/></disk><fsinfo real_dev="/dev/sda1" mp="/boot/efi" fs="vfat"/><fsinfo real_dev="/dev/sda2" mp="/" fs="ext4"/><bootloader flavor="grub" install_type="efi" default_entry="0" timeout="1"/></config>';

let s: Scratch;
beforeEach(() => {
  s = new Scratch();
});
afterEach(async () => {
  await s.cleanup();
});

/** A directory of links to every program on this PATH but `without`: the PATH of a boot environment lacking it. */
function pathWithout(without: string[]): string {
  const dir = join(s.dir, 'bin');
  mkdirSync(dir);
  const seen = new Set<string>();
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    if (!d || !existsSync(d)) continue;
    for (const name of readdirSync(d)) {
      if (seen.has(name) || without.includes(name)) continue;
      seen.add(name);
      symlinkSync(join(d, name), join(dir, name));
    }
  }
  return dir;
}

/** A modprobe that records what it was asked for and fails for vfat as a kernel without it does. */
function fakeModprobe(): { path: string; log: string } {
  const path = join(s.dir, 'modprobe');
  const log = join(s.dir, 'modprobe.log');
  writeFileSync(path, `#!/bin/sh\necho "$*" >> ${log}\nif [ "$1" = vfat ]; then echo "modprobe: FATAL: Module vfat not found in directory /lib/modules/$(uname -r)" >&2; exit 1; fi\nexit 0\n`);
  chmodSync(path, 0o755);
  return { path, log };
}

/** A loop device whose every byte is random, so any write shows in its checksum. */
async function randomDisk(): Promise<{ dev: string; file: string }> {
  const l = await s.loop(96 * MiB);
  const fd = randomBytes(MiB);
  const buf = Buffer.concat(Array.from({ length: 96 }, () => fd));
  writeFileSync(l.file, buf);
  return l;
}

describe('the node has what the plan needs, checked before the first write', () => {
  it('layout apply: a missing mkfs.ext4 and a vfat that modprobe cannot load, both reported, one code, disk untouched', async () => {
    const { dev, file } = await randomDisk();
    const layout = join(s.dir, 'esp.xml');
    writeFileSync(layout, XML);
    const before = await sha256File(file);
    const bin = pathWithout(['mkfs.ext4']);
    const mp = fakeModprobe();
    const r = spawnSync(join(ROOT, 'bin', 'ferry'), ['layout', 'apply', layout, '--disk', dev, '--root', s.root(), '--yes'], {
      encoding: 'utf8', env: { ...process.env, PATH: bin, FERRY_TOOL_MODPROBE: mp.path, FERRY_LOG_LEVEL: 'warn' },
    });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toContain('FERRY_E_NODE_UNSUPPORTED');
    expect(r.stderr).toContain('mkfs.ext4');
    expect(r.stderr).toContain('e2fsprogs');
    expect(r.stderr).toContain('Module vfat not found');
    // ext4 is registered in this kernel: only vfat was asked of modprobe.
    expect(readFileSync(mp.log, 'utf8').trim().split('\n')).toEqual(['vfat']);
    expect(await sha256File(file)).toBe(before);
  });

  it('the install stage refuses with both problems as events before it writes; disk untouched', async () => {
    const { dev, file } = await randomDisk();
    const before = await sha256File(file);
    const bin = pathWithout(['mkfs.ext4']);
    const mp = fakeModprobe();
    const events: ProgressEvent[] = [];
    const ctx = {
      opts: { server: 'http://127.0.0.1:9', token: 't', disks: [dev], yes: true, mountRoot: s.root() },
      emit: (e: ProgressEvent) => events.push(e),
      doing: '', mounted: false, finish: 'reboot', warnings: [],
      config: { layout: { xml: XML, digest: 'sha256:test' }, node: { name: 'support' }, deployment: { id: 1, identity: 'support-test' } },
    } as unknown as InstallContext;
    const path = process.env.PATH;
    process.env.PATH = bin;
    setTools({ modprobe: mp.path });
    let error: { code?: string; problems?: { code: string; path?: string }[] } | undefined;
    try {
      await disksStage.run(ctx);
    } catch (e) {
      error = e as typeof error;
    } finally {
      process.env.PATH = path;
      setTools({ modprobe: 'modprobe' });
    }
    if (!error && ctx.plan && ctx.root) await (await diskModule()).teardownDiskPlan(ctx.plan, ctx.root);
    expect(error?.code).toBe('FERRY_E_NODE_UNSUPPORTED');
    expect(error?.problems?.map((p) => p.path).sort()).toEqual(['mkfs.ext4', 'vfat']);
    const warned = events.filter((e) => e.state === 'warning' && e.code === 'FERRY_E_NODE_UNSUPPORTED').map((e) => e.object);
    expect(warned.sort()).toEqual(['mkfs.ext4', 'vfat']);
    expect(events.some((e) => e.phase === 'disks' && e.state === 'start')).toBe(false);
    expect(await sha256File(file)).toBe(before);
  });
});
