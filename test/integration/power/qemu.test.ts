/**
 * The qemu power driver against a real QEMU (no disk: -S starts it powered off, -no-shutdown keeps
 * the process when the guest stops), through the real `ferry` CLI: node set --power, power
 * on/off/cycle/status with collated output, the audit entries, deploy --power, and the password
 * never shown.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, spawnTool, type Spawned } from '../../../common/run.js';
import { waitFor } from '../../../common/wait.js';
import { QmpClient } from '../../../server/power/qemu.js';
import { LAYOUT, smallTree, tempDir } from '../server/helpers.js';

const FERRY = join(import.meta.dirname, '..', '..', '..', 'bin', 'ferry');
const SECRET = 'qmp-lab-secret-7d1f';

describe('qemu power driver (QMP) with a real qemu-system-x86_64', () => {
  let t: ReturnType<typeof tempDir>;
  let data: string;
  let sock: string;
  let qemu: Spawned | undefined;
  const ferry = (args: string[], okCodes = [0]) => run([FERRY, ...args, '--data', data], { okCodes, timeoutMs: 60_000 });
  const json = async (args: string[], okCodes = [0]) => JSON.parse((await ferry([...args, '--json'], okCodes)).stdout);
  /** What QEMU itself says, asked on our own QMP connection. */
  const qemuStatus = async () => {
    const q = await QmpClient.connect(sock, 10_000);
    try {
      return ((await q.execute('query-status')) as { status: string }).status;
    } finally {
      q.close();
    }
  };

  beforeAll(async () => {
    t = tempDir('ferry-power-qemu-');
    data = join(t.dir, 'data');
    sock = join(t.dir, 'qmp.sock');
    qemu = spawnTool(['qemu-system-x86_64', '-S', '-nodefaults', '-display', 'none', '-accel', 'tcg', '-m', '32', '-no-shutdown', '-qmp', `unix:${sock},server=on,wait=off`], { stdout: 'ignore' });
    await waitFor(() => existsSync(sock), { what: `QEMU's QMP socket ${sock}`, timeoutMs: 20_000 });
    writeFileSync(join(t.dir, 'pw'), SECRET + '\n', { mode: 0o600 });
    smallTree(join(t.dir, 'tree'));
    writeFileSync(join(t.dir, 'layout.xml'), LAYOUT);
  });
  afterAll(async () => {
    if (qemu) {
      qemu.child.kill('SIGKILL');
      await qemu.done.catch(() => {});
    }
    t?.cleanup();
  });

  it('stores the driver and address, and never shows the password', async () => {
    await ferry(['node', 'add', 'lab1', '--mac', '52:54:00:12:34:56']);
    const set = await ferry(['node', 'set', 'lab1', '--power', 'qemu', '--power-address', sock, '--power-user', 'admin', '--power-password-file', join(t.dir, 'pw')]);
    expect(set.stdout + set.stderr).not.toContain(SECRET);
    const n = await json(['node', 'show', 'lab1']);
    expect(n.power).toEqual({ driver: 'qemu', address: sock, user: 'admin', password: true });
    const text = await ferry(['node', 'show', 'lab1']);
    expect(text.stdout).toContain(`power: qemu ${sock} user admin (password stored)`);
    const all = [text.stdout, JSON.stringify(n), (await ferry(['node', 'ls', '--json'])).stdout, (await ferry(['audit', '--json'])).stdout].join('\n');
    expect(all).not.toContain(SECRET);
    expect(all).toContain('(set)');
    // The secret is in the database only, which only its owner can read.
    expect(statSync(join(data, 'ferry.db')).mode & 0o077).toBe(0);
    expect(statSync(data).mode & 0o077).toBe(0);
  });

  it('refuses a bad address and a driver it does not know, changing nothing', async () => {
    const bad = await json(['node', 'set', 'lab1', '--power', 'qemu', '--power-address', 'relative/qmp.sock'], [1]);
    expect(bad.error.code).toBe('FERRY_E_POWER_ADDRESS');
    const unknown = await json(['node', 'set', 'lab1', '--power', 'amt'], [1]);
    expect(unknown.error.code).toBe('FERRY_E_BAD_VALUE');
    expect((await json(['node', 'show', 'lab1'])).power.address).toBe(sock);
  });

  it('status asks QEMU; on, off and cycle change what QEMU says', async () => {
    expect(await qemuStatus()).toBe('prelaunch');
    expect((await json(['power', 'status', 'lab1'])).results).toEqual([{ node: 'lab1', driver: 'qemu', action: 'status', ok: true, state: 'off' }]);
    expect((await json(['power', 'on', 'lab1'])).results[0]).toMatchObject({ ok: true, state: 'on' });
    expect(await qemuStatus()).toBe('running');
    // Changed behind Ferry's back: status reads the machine, not a cache.
    const q = await QmpClient.connect(sock, 10_000);
    await q.execute('stop');
    q.close();
    expect((await json(['power', 'status', 'lab1'])).results[0].state).toBe('off');
    expect((await json(['power', 'on', 'lab1'])).results[0].state).toBe('on');
    expect((await json(['power', 'off', 'lab1'])).results[0]).toMatchObject({ ok: true, state: 'off' });
    // stop + system_reset: QEMU reports the guest as not yet launched again (prelaunch).
    expect(['paused', 'prelaunch']).toContain(await qemuStatus());
    expect((await json(['power', 'cycle', 'lab1'])).results[0]).toMatchObject({ ok: true, state: 'on' });
    expect(await qemuStatus()).toBe('running');
    const audit = await json(['audit']);
    const actions = audit.filter((a: any) => a.object === 'lab1' && a.action.startsWith('power.')).map((a: any) => a.action);
    expect(actions).toEqual(['power.cycle', 'power.off', 'power.on', 'power.on']);
  });

  it('collates a selection: one dead BMC fails its row, the others still act', async () => {
    await ferry(['node', 'add', 'lab2', '--mac', '52:54:00:12:34:57', '--group', 'rack', '--power', 'qemu', '--power-address', join(t.dir, 'gone.sock')]);
    await ferry(['node', 'add', 'lab3', '--mac', '52:54:00:12:34:58', '--group', 'rack']);
    await ferry(['group', 'add', 'rack', '--node', 'lab1']);
    const r = await json(['power', 'status', '@rack'], [1]);
    const by = Object.fromEntries(r.results.map((x: any) => [x.node, x]));
    expect(by.lab1).toMatchObject({ ok: true, state: 'on' });
    expect(by.lab2).toMatchObject({ ok: false, error: { code: 'FERRY_E_POWER_FAILED' } });
    expect(by.lab2.error.message).toContain('gone.sock');
    expect(by.lab3).toMatchObject({ ok: false, error: { code: 'FERRY_E_POWER_NOT_SET' } });
    const table = await ferry(['power', 'status', '@rack'], [1]);
    expect(table.stdout).toMatch(/^NODE\s+DRIVER\s+ACTION\s+STATE\s+RESULT/);
    expect(table.stdout).toMatch(/lab2\s+qemu\s+status\s+FERRY_E_POWER_FAILED/);
    expect(table.stderr).toContain('fix: set one: ferry node set lab3 --power');
  });

  it('deploy --power arms the install, then starts the machine (no one-time PXE over QMP: a cycle)', async () => {
    await ferry(['image', 'import', 'base', '--dir', join(t.dir, 'tree')]);
    await ferry(['node', 'set', 'lab1', '--image', 'base', '--layout', join(t.dir, 'layout.xml')]);
    await json(['power', 'off', 'lab1']);
    const r = await json(['deploy', 'lab1', '--power']);
    expect(r.deployments).toHaveLength(1);
    expect(r.power).toEqual([{ node: 'lab1', driver: 'qemu', action: 'install', ok: true, state: 'on', pxeOnce: false, started: 'on' }]);
    expect(await qemuStatus()).toBe('running');
    // A node without a driver in the selection: nothing is armed.
    await ferry(['node', 'set', 'lab3', '--image', 'base', '--layout', join(t.dir, 'layout.xml')]);
    const refused = await json(['deploy', 'lab3', '--power'], [1]);
    expect(refused.error.code).toBe('FERRY_E_POWER_NOT_SET');
    expect(await json(['history', 'lab3'])).toEqual([]);
  });
});
