/**
 * ipmi: a BMC over IPMI v2.0 (RMCP+, "lanplus"), through ipmitool, the client MAAS and Ironic use.
 *
 * The password never reaches a command line (where `ps` shows it): ipmitool gets `-E` and reads it
 * from IPMI_PASSWORD in its environment. `-C 3` names the cipher suite (RAKP-HMAC-SHA1,
 * HMAC-SHA1-96, AES-CBC-128) that BMCs and OpenIPMI's simulator support: without it ipmitool first
 * probes suites one by one, about 10 s per call against ipmi_sim.
 */
import { run, type Runner } from '../../common/run.js';
import { parseHostPort } from './address.js';
import { powerFailed } from './errors.js';
import { POWER_TIMEOUT_MS, type PowerDriver, type PowerResult, type PowerState, type PowerTarget } from './types.js';

export interface IpmiCall {
  argv: string[];
  env: Record<string, string>;
}

/** The ipmitool command for one request (a pure plan: the unit tier checks it). */
export function ipmiCall(t: PowerTarget, args: string[]): IpmiCall {
  const { host, port } = parseHostPort('ipmi', t.address);
  const argv = ['ipmitool', '-I', 'lanplus', '-C', '3', '-H', host];
  if (port) argv.push('-p', String(port));
  argv.push('-U', t.user ?? '');
  // -E: the password from IPMI_PASSWORD (an empty one when none is stored, as BMCs allow).
  argv.push('-E', '-N', '2', '-R', '3', ...args);
  return { argv, env: { IPMI_PASSWORD: t.password ?? '' } };
}

/** `Chassis Power is on|off` (ipmitool chassis power status). */
export function parseIpmiStatus(stdout: string): PowerState | undefined {
  const m = /Chassis Power is (on|off)/i.exec(stdout);
  return m ? (m[1].toLowerCase() as PowerState) : undefined;
}

let runner: Runner = run;
/** For tests that record the commands instead of running them. */
export function setIpmiRunner(r: Runner): void {
  runner = r;
}

async function ipmitool(t: PowerTarget, action: string, args: string[]): Promise<string> {
  const c = ipmiCall(t, args);
  try {
    return (await runner(c.argv, { env: c.env, timeoutMs: POWER_TIMEOUT_MS })).stdout;
  } catch (e) {
    const d = (e as { details?: { stderrTail?: string } }).details;
    throw powerFailed(t, action, (d?.stderrTail || (e as Error).message).trim().split('\n').slice(-3).join('; '), e);
  }
}

async function status(t: PowerTarget): Promise<PowerResult> {
  const out = await ipmitool(t, 'status', ['chassis', 'power', 'status']);
  const state = parseIpmiStatus(out);
  if (!state) throw powerFailed(t, 'status', `ipmitool printed no power state: ${out.trim().slice(0, 200)}`);
  return { state };
}

export const ipmi: PowerDriver = {
  kind: 'ipmi',
  can: { on: true, off: true, cycle: true, status: true, pxeOnce: true },
  async on(t) {
    await ipmitool(t, 'on', ['chassis', 'power', 'on']);
    return status(t);
  },
  async off(t) {
    await ipmitool(t, 'off', ['chassis', 'power', 'off']);
    return status(t);
  },
  async cycle(t) {
    // IPMI's power cycle does nothing to a chassis that is off (and some BMCs refuse it): power on.
    const before = await status(t);
    await ipmitool(t, 'cycle', ['chassis', 'power', before.state === 'off' ? 'on' : 'cycle']);
    return status(t);
  },
  status,
  async pxeOnce(t) {
    // Without options=persistent the boot flags are valid for the next boot only.
    await ipmitool(t, 'boot override', ['chassis', 'bootdev', 'pxe']);
  },
};
