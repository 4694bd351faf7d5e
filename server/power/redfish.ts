/**
 * redfish: a BMC's Redfish service (DMTF DSP0266), over HTTPS with undici.
 *
 *   the system  GET /redfish/v1/Systems: the one member (a BMC that manages several systems is
 *               refused unless the address names one: https://BMC/redfish/v1/Systems/ID)
 *   status      the system's PowerState (On, Off; PoweringOn/Off read as on/off)
 *   on|off      POST Actions/#ComputerSystem.Reset {ResetType: On | ForceOff}
 *   cycle       ForceRestart when on, On when off
 *   pxeOnce     PATCH the system {Boot: {BootSourceOverrideEnabled: Once, BootSourceOverrideTarget: Pxe}}
 *
 * Basic authentication with the stored user and password, sent only in the Authorization header.
 * `http://` is accepted for test services on loopback; a bare HOST[:PORT] means https (whose
 * certificate is verified as usual).
 */
import { request } from 'undici';
import { parseHostPort } from './address.js';
import { badAddress, powerFailed } from './errors.js';
import { POWER_TIMEOUT_MS, type PowerDriver, type PowerResult, type PowerState, type PowerTarget } from './types.js';

const MAX_BODY = 1024 * 1024;

/** The service root and, when the address names one, the system's path. */
export function redfishBase(address: string): { origin: string; system?: string } {
  let url: URL;
  try {
    url = new URL(/^https?:\/\//i.test(address) ? address : `https://${address}`);
  } catch {
    throw badAddress('redfish', address, 'not a URL or HOST[:PORT]');
  }
  if (!/^https?:$/.test(url.protocol)) throw badAddress('redfish', address, 'only http:// and https:// are Redfish');
  if (url.username || url.password) throw badAddress('redfish', address, 'put the user in --power-user and the password in --power-password-file, not in the address');
  if (!/^https?:\/\//i.test(address)) parseHostPort('redfish', address);
  const path = url.pathname.replace(/\/+$/, '');
  if (path && !/^\/redfish\/v1\/Systems\/[^/]+$/.test(path)) throw badAddress('redfish', address, 'a path must be /redfish/v1/Systems/ID');
  return { origin: url.origin, system: path || undefined };
}

/** Redfish PowerState values as Ferry's. */
export function redfishState(s: unknown): PowerState {
  if (s === 'On' || s === 'PoweringOn') return 'on';
  if (s === 'Off' || s === 'PoweringOff') return 'off';
  return 'unknown';
}

async function call(t: PowerTarget, action: string, method: 'GET' | 'POST' | 'PATCH', url: string, body?: unknown): Promise<any> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (t.user !== undefined || t.password !== undefined) headers.authorization = 'Basic ' + Buffer.from(`${t.user ?? ''}:${t.password ?? ''}`).toString('base64');
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await request(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), headersTimeout: POWER_TIMEOUT_MS, bodyTimeout: POWER_TIMEOUT_MS, signal: AbortSignal.timeout(POWER_TIMEOUT_MS) });
  } catch (e) {
    throw powerFailed(t, action, `${method} ${url}: ${(e as Error).message}`, e);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of res.body) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) {
      res.body.destroy();
      throw powerFailed(t, action, `${method} ${url}: the answer is larger than 1 MiB`);
    }
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (res.statusCode === 401 || res.statusCode === 403) throw powerFailed(t, action, `${method} ${url}: HTTP ${res.statusCode} (the user or password was refused)`);
  if (res.statusCode >= 400) {
    let msg = text.slice(0, 300);
    try {
      msg = JSON.parse(text)?.error?.message ?? msg;
    } catch {
      /* not JSON: the text itself */
    }
    throw powerFailed(t, action, `${method} ${url}: HTTP ${res.statusCode}: ${msg}`);
  }
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw powerFailed(t, action, `${method} ${url}: the answer is not JSON`);
  }
}

async function systemUrl(t: PowerTarget, action: string): Promise<string> {
  const { origin, system } = redfishBase(t.address);
  if (system) return origin + system;
  const col = await call(t, action, 'GET', `${origin}/redfish/v1/Systems`);
  const members: { '@odata.id'?: string }[] = Array.isArray(col?.Members) ? col.Members : [];
  if (members.length !== 1 || typeof members[0]['@odata.id'] !== 'string') {
    throw powerFailed(t, action, `the service manages ${members.length} systems; name one in the address (${origin}/redfish/v1/Systems/ID)`);
  }
  return origin + members[0]['@odata.id'];
}

async function status(t: PowerTarget, action = 'status'): Promise<PowerResult & { url: string; sys: any }> {
  const url = await systemUrl(t, action);
  const sys = await call(t, action, 'GET', url);
  return { state: redfishState(sys?.PowerState), url, sys };
}

async function reset(t: PowerTarget, action: string, type: string): Promise<PowerResult> {
  const s = await status(t, action);
  const act = s.sys?.Actions?.['#ComputerSystem.Reset'];
  const target = typeof act?.target === 'string' ? act.target : new URL(s.url).pathname + '/Actions/ComputerSystem.Reset';
  const allowed: unknown = act?.['ResetType@Redfish.AllowableValues'];
  if (Array.isArray(allowed) && !allowed.includes(type)) throw powerFailed(t, action, `the system does not offer ResetType ${type} (it offers ${allowed.join(', ')})`);
  await call(t, action, 'POST', new URL(target, s.url).href, { ResetType: type });
  const after = await status(t, action);
  return { state: after.state };
}

export const redfish: PowerDriver = {
  kind: 'redfish',
  can: { on: true, off: true, cycle: true, status: true, pxeOnce: true },
  on: (t) => reset(t, 'on', 'On'),
  off: (t) => reset(t, 'off', 'ForceOff'),
  async cycle(t) {
    const s = await status(t, 'cycle');
    return reset(t, 'cycle', s.state === 'off' ? 'On' : 'ForceRestart');
  },
  async status(t) {
    return { state: (await status(t)).state };
  },
  async pxeOnce(t) {
    const url = await systemUrl(t, 'boot override');
    await call(t, 'boot override', 'PATCH', url, { Boot: { BootSourceOverrideEnabled: 'Once', BootSourceOverrideTarget: 'Pxe' } });
  },
};
