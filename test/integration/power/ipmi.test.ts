/**
 * The ipmi power driver: the real ipmitool against OpenIPMI's BMC simulator (ipmi_sim, Debian
 * openipmi) on loopback, whose chassis is test/fixtures/power/chassis-control.sh starting and
 * stopping a real QEMU process and honouring a one-time `chassis bootdev pxe` (QEMU started with
 * -boot once=n). The password reaches ipmitool through its environment only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTools, spawnTool, type Spawned } from '../../../common/run.js';
import { waitFor } from '../../../common/wait.js';
import { powerAction, powerForInstall, type PowerTarget } from '../../../server/power/index.js';
import { tempDir } from '../server/helpers.js';

const CHASSIS = join(import.meta.dirname, '..', '..', 'fixtures', 'power', 'chassis-control.sh');
const SECRET = 'bmc-Secret-41a9';

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('ipmi power driver: ipmitool lanplus against ipmi_sim controlling a QEMU process', () => {
  let t: ReturnType<typeof tempDir>;
  let sim: Spawned | undefined;
  let target: PowerTarget;
  const starts = () => (existsSync(join(t.dir, 'starts')) ? readFileSync(join(t.dir, 'starts'), 'utf8').split('\n').slice(0, -1) : []);
  const state = async () => (await powerAction(target, 'status')).state;

  beforeAll(async () => {
    t = tempDir('ferry-power-ipmi-');
    const port = await freeUdpPort();
    writeFileSync(
      join(t.dir, 'lan.conf'),
      [
        'name "ferrytest"',
        'set_working_mc 0x20',
        '  startlan 1',
        `    addr 127.0.0.1 ${port}`,
        '    priv_limit admin',
        '    allowed_auths_callback none md2 md5 straight',
        '    allowed_auths_user none md2 md5 straight',
        '    allowed_auths_operator none md2 md5 straight',
        '    allowed_auths_admin none md2 md5 straight',
        '    guid a123456789abcdefa123456789abcdef',
        '  endlan',
        `  chassis_control "${CHASSIS}"`,
        `  user 2 true "ferry" "${SECRET}" admin 10 none md2 md5 straight`,
        '',
      ].join('\n'),
    );
    writeFileSync(join(t.dir, 'sim.emu'), 'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n');
    // Every ipmitool command line, recorded by a wrapper: the password must not be on one.
    writeFileSync(join(t.dir, 'ipmitool'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${t.dir}/argv.log'\nexec ipmitool "$@"\n`);
    chmodSync(join(t.dir, 'ipmitool'), 0o755);
    setTools({ ipmitool: join(t.dir, 'ipmitool') });
    sim = spawnTool(['ipmi_sim', '-c', join(t.dir, 'lan.conf'), '-f', join(t.dir, 'sim.emu'), '-s', t.dir, '-n'], { env: { FERRY_CHASSIS_DIR: t.dir } });
    target = { node: 'bmc1', driver: 'ipmi', address: `127.0.0.1:${port}`, user: 'ferry', password: SECRET, macs: [] };
    await waitFor(() => state().then(() => true), { what: `ipmi_sim answering on 127.0.0.1:${port}`, timeoutMs: 30_000 });
  });
  afterAll(async () => {
    setTools({ ipmitool: 'ipmitool' });
    if (sim) {
      sim.child.kill('SIGKILL');
      await sim.done.catch(() => {});
    }
    const pidFile = t && join(t.dir, 'qemu.pid');
    if (pidFile && existsSync(pidFile)) {
      try {
        process.kill(Number(readFileSync(pidFile, 'utf8').trim()), 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    t?.cleanup();
  });

  it('status, on, cycle and off, as the chassis (a QEMU process) sees them', async () => {
    expect(await state()).toBe('off');
    expect((await powerAction(target, 'on')).state).toBe('on');
    expect(starts()).toEqual(['']);
    const pid = Number(readFileSync(join(t.dir, 'qemu.pid'), 'utf8'));
    expect(() => process.kill(pid, 0)).not.toThrow();
    await powerAction(target, 'cycle');
    // The simulator powers off, then on again after its own delay.
    await waitFor(() => starts().length === 2 && state().then((s) => s === 'on'), { what: 'the chassis powered on again after the cycle', timeoutMs: 30_000 });
    expect((await powerAction(target, 'off')).state).toBe('off');
    expect(existsSync(join(t.dir, 'qemu.pid'))).toBe(false);
  });

  it('deploy --power: a one-time PXE boot, then power on (the machine was off); the next start boots as before', async () => {
    const r = await powerForInstall(target);
    expect(r).toMatchObject({ pxeOnce: true, action: 'on', state: 'on' });
    expect(starts().at(-1)).toBe('-boot once=n');
    // The PXE request of the last install was used up: the next start boots as before.
    await powerAction(target, 'off');
    await powerAction(target, 'on');
    expect(starts().at(-1)).toBe('');
    await powerAction(target, 'off');
  });

  it('a wrong password is FERRY_E_POWER_FAILED in bounded time, naming the node and address', async () => {
    const started = Date.now();
    const e = await powerAction({ ...target, password: 'wrong' }, 'status').catch((x) => x);
    expect(e.code).toBe('FERRY_E_POWER_FAILED');
    expect(e.message).toContain('bmc1');
    expect(e.message).toContain(target.address);
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('never put the password on a command line', () => {
    const argv = readFileSync(join(t.dir, 'argv.log'), 'utf8');
    expect(argv).toContain('-E');
    expect(argv).toContain('-C 3');
    expect(argv).not.toContain(SECRET);
  });
});
