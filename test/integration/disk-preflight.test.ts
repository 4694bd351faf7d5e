/**
 * Check before the first write, on real loop devices (as root): a target that is mounted, that
 * backs another loop device, or that another process holds open with O_EXCL is refused before
 * anything is written, by `ferry layout apply` and by the install stage alike, and its bytes
 * are unchanged.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../common/run.js';
import type { ProgressEvent } from '../../common/progress.js';
import { discoverDisks } from '../../installer/disk/discover.js';
import { preflightProblems } from '../../installer/disk/in-use.js';
import { disks as disksStage, diskModule } from '../../installer/stages/disks.js';
import type { InstallContext } from '../../installer/stages/types.js';
import { parseLayout } from '../../layout/parse.js';
import { planDisks } from '../../layout/plan.js';
import { ferry, Scratch, sha256File } from './layout-helpers.js';

const MiB = 1024 ** 2;
const XML = '<config><disk dev="/dev/sda" label_type="gpt"><part num="1" size="*"/></disk><fsinfo real_dev="/dev/sda1" mp="/" fs="ext4"/></config>';
let s: Scratch;
let holder: ChildProcess | undefined;
beforeEach(() => {
  s = new Scratch();
});
afterEach(async () => {
  if (holder && holder.exitCode === null && holder.signalCode === null) {
    holder.kill('SIGKILL');
    await new Promise((r) => holder!.once('exit', r));
  }
  holder = undefined;
  await s.cleanup();
});

/** A loop device with a GPT and an ext4 partition, written by Ferry itself. */
async function preparedDisk(): Promise<{ dev: string; file: string; layout: string }> {
  const { dev, file } = await s.loop(64 * MiB);
  const layout = join(s.dir, 'one.xml');
  writeFileSync(layout, XML);
  const root = s.root();
  const a = ferry(['layout', 'apply', layout, '--disk', dev, '--root', root, '--yes']);
  expect(a.code, a.stderr).toBe(0);
  expect(ferry(['layout', 'teardown', layout, '--disk', dev, '--root', root]).code).toBe(0);
  return { dev, file, layout };
}

/** The install stage on its own, as `ferry install --disk DEV --yes` runs it. */
async function runStage(dev: string): Promise<{ error?: { code?: string; problems?: { code: string }[] }; events: ProgressEvent[] }> {
  const events: ProgressEvent[] = [];
  const ctx = {
    opts: { server: 'http://127.0.0.1:9', token: 't', disks: [dev], yes: true, mountRoot: s.root() },
    emit: (e: ProgressEvent) => events.push(e),
    doing: '', mounted: false, finish: 'stay', warnings: [],
    config: { layout: { xml: XML, digest: 'sha256:test' }, node: { name: 'preflight' }, deployment: { id: 1, identity: 'preflight-test' } },
  } as unknown as InstallContext;
  try {
    await disksStage.run(ctx);
  } catch (e) {
    return { error: e as { code?: string; problems?: { code: string }[] }, events };
  }
  // Not expected: undo what it did so the scratch cleanup can detach the loop device.
  if (ctx.plan && ctx.root) await (await diskModule()).teardownDiskPlan(ctx.plan, ctx.root);
  return { events };
}

/** A process that opens DEV with O_EXCL and keeps it open until killed. */
async function holdExclusive(dev: string): Promise<ChildProcess> {
  const c = spawn(process.execPath, ['-e', `const fs = require('fs'); fs.openSync(${JSON.stringify(dev)}, fs.constants.O_RDONLY | fs.constants.O_EXCL); process.stdout.write('held\\n'); setTimeout(() => {}, 60000);`], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('the O_EXCL holder did not start within 10 s')), 10_000);
    c.stdout!.on('data', (b: Buffer) => {
      if (b.toString().includes('held')) {
        clearTimeout(t);
        resolve();
      }
    });
    c.once('exit', (code) => reject(new Error(`the O_EXCL holder exited with ${code}`)));
  });
  return c;
}

describe('the disks are checked before the first write', () => {
  it('a mounted loop device is refused by layout apply and by the install stage; its bytes are unchanged', async () => {
    const { dev, file, layout } = await preparedDisk();
    const mnt = join(s.dir, 'mnt');
    mkdirSync(mnt);
    // Read-only and without journal replay, so the image cannot change underneath the test.
    await run(['mount', '-o', 'ro,noload', `${dev}p1`, mnt]);
    const before = await sha256File(file);
    const r = ferry(['layout', 'apply', layout, '--disk', dev, '--root', s.root(), '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('FERRY_E_DISK_MOUNTED');
    expect(r.stderr).toContain(mnt);
    const st = await runStage(dev);
    expect(st.error?.code).toBe('FERRY_E_DISK_MOUNTED');
    expect(st.events.filter((e) => e.state === 'warning').map((e) => e.code)).toContain('FERRY_E_DISK_MOUNTED');
    expect(st.events.some((e) => e.state === 'start' && e.phase === 'disks')).toBe(false);
    await run(['umount', mnt]);
    expect(await sha256File(file)).toBe(before);
  });

  it('a loop device another process holds with O_EXCL is refused; its bytes are unchanged', async () => {
    const { dev, file, layout } = await preparedDisk();
    const before = await sha256File(file);
    holder = await holdExclusive(dev);
    const r = ferry(['layout', 'apply', layout, '--disk', dev, '--root', s.root(), '--yes']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('FERRY_E_DISK_OPEN_EXCLUSIVE');
    const st = await runStage(dev);
    expect(st.error?.code).toBe('FERRY_E_DISK_OPEN_EXCLUSIVE');
    expect(await sha256File(file)).toBe(before);
    // Once the holder is gone, the same disk passes the check.
    holder.kill('SIGKILL');
    if (holder.exitCode === null && holder.signalCode === null) await new Promise((res) => holder!.once('exit', res));
    const found = await discoverDisks({ only: [dev] });
    expect(preflightProblems(planDisks(parseLayout(XML), found), found)).toEqual([]);
  });

  it('a disk whose partition backs another loop device is refused', async () => {
    const { dev, file, layout } = await preparedDisk();
    const inner = (await run(['losetup', '-f', '--show', '-r', `${dev}p1`])).stdout.trim();
    try {
      const before = await sha256File(file);
      const r = ferry(['layout', 'apply', layout, '--disk', dev, '--root', s.root(), '--yes']);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain('FERRY_E_DISK_BACKS_LOOP');
      expect(r.stderr).toContain(inner);
      expect(await sha256File(file)).toBe(before);
    } finally {
      await run(['losetup', '-d', inner]);
    }
  });
});
