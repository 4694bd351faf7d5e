/**
 * qemu: a QEMU guest driven over QMP (its JSON machine protocol on a unix socket), for labs and
 * for Ferry's own tests. The QEMU process plays the chassis: it stays, and the guest inside is
 * powered. Start the guest with `-qmp unix:PATH,server=on,wait=off` (and `-S` for a machine that
 * starts powered off; `-no-shutdown` so that a guest shutting itself down reads as off instead of
 * ending the process).
 *
 *   on     `system_reset` when the guest is stopped, then `cont` (a fresh boot, like a power button)
 *   off    `stop` then `system_reset`: the guest halts at once (a pulled plug; QEMU then reports
 *          prelaunch), and the next on boots from the start
 *   cycle  `system_reset`, and `cont` when the guest was stopped
 *   status `query-status`: running is on; prelaunch, paused, shutdown and the rest are off
 *
 * There is no one-time boot order over QMP (QEMU sets it with -boot on its command line), so a lab
 * guest that should network-boot is started with `-boot n` (or once=n).
 */
import { createConnection, type Socket } from 'node:net';
import { isAbsolute } from 'node:path';
import { badAddress, powerFailed, unsupported } from './errors.js';
import { POWER_TIMEOUT_MS, type PowerDriver, type PowerResult, type PowerState, type PowerTarget } from './types.js';

/** QMP's run states (qapi RunState) as power states. */
export function qmpState(status: string): PowerState {
  return status === 'running' ? 'on' : 'off';
}

/** At most this much from QEMU before a reply; a QMP reply is a few hundred bytes. */
const MAX_BUFFER = 1024 * 1024;

/** One QMP session: the greeting, qmp_capabilities, then commands in order, replies matched by id. */
export class QmpClient {
  private buf = '';
  private waiting = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private greeted!: Promise<void>;
  private seq = 0;
  private failure?: Error;
  private constructor(private sock: Socket) {}

  static async connect(path: string, timeoutMs = POWER_TIMEOUT_MS): Promise<QmpClient> {
    const sock = createConnection({ path });
    const c = new QmpClient(sock);
    c.greeted = new Promise((resolve, reject) => {
      c.waiting.set('greeting', { resolve: () => resolve(), reject });
    });
    sock.setEncoding('utf8');
    sock.setTimeout(timeoutMs, () => c.fail(new Error(`no answer from QMP within ${timeoutMs} ms`)));
    sock.on('data', (s: string) => c.onData(s));
    sock.on('error', (e) => c.fail(e));
    sock.on('close', () => c.fail(new Error('QMP socket closed')));
    await c.greeted;
    await c.execute('qmp_capabilities');
    return c;
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const w of this.waiting.values()) w.reject(this.failure);
    this.waiting.clear();
    this.sock.destroy();
  }

  private onData(s: string): void {
    this.buf += s;
    if (this.buf.length > MAX_BUFFER) return this.fail(new Error('QMP sent more than 1 MiB without a line end'));
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      let msg: any;
      try {
        msg = JSON.parse(line);
      } catch {
        return this.fail(new Error(`QMP sent a line that is not JSON: ${line.slice(0, 200)}`));
      }
      if (msg.QMP) this.settle('greeting', undefined);
      else if (msg.id !== undefined) {
        if (msg.error) this.settle(String(msg.id), undefined, new Error(`${msg.error.class}: ${msg.error.desc}`));
        else this.settle(String(msg.id), msg.return);
      }
      // events ({"event": …}) are not replies: ignored
    }
  }

  private settle(id: string, v: unknown, e?: Error): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    if (e) w.reject(e);
    else w.resolve(v);
  }

  execute(command: string, args?: Record<string, unknown>): Promise<any> {
    if (this.failure) return Promise.reject(this.failure);
    const id = `ferry-${++this.seq}`;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.sock.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id }) + '\n');
    });
  }

  close(): void {
    this.failure ??= new Error('closed');
    this.sock.end();
    this.sock.destroy();
  }
}

async function withQmp<T>(t: PowerTarget, action: string, fn: (q: QmpClient) => Promise<T>): Promise<T> {
  if (!isAbsolute(t.address)) throw badAddress('qemu', t.address, 'give the absolute path of the guest\'s QMP unix socket (-qmp unix:PATH,server=on,wait=off)');
  let q: QmpClient | undefined;
  try {
    q = await QmpClient.connect(t.address);
    return await fn(q);
  } catch (e) {
    throw powerFailed(t, action, (e as Error).message, e);
  } finally {
    q?.close();
  }
}

async function status(q: QmpClient): Promise<PowerState> {
  const s = (await q.execute('query-status')) as { status: string };
  return qmpState(s.status);
}

export const qemu: PowerDriver = {
  kind: 'qemu',
  can: { on: true, off: true, cycle: true, status: true, pxeOnce: false },
  on: (t) =>
    withQmp(t, 'on', async (q): Promise<PowerResult> => {
      if ((await status(q)) === 'on') return { state: 'on' };
      await q.execute('system_reset');
      await q.execute('cont');
      return { state: await status(q) };
    }),
  off: (t) =>
    withQmp(t, 'off', async (q): Promise<PowerResult> => {
      await q.execute('stop');
      await q.execute('system_reset');
      return { state: await status(q) };
    }),
  cycle: (t) =>
    withQmp(t, 'cycle', async (q): Promise<PowerResult> => {
      await q.execute('system_reset');
      if ((await status(q)) !== 'on') await q.execute('cont');
      return { state: await status(q) };
    }),
  status: (t) => withQmp(t, 'status', async (q) => ({ state: await status(q) })),
  pxeOnce: async (t) => {
    throw unsupported(t, 'set a one-time network boot', 'QMP has no boot-order command; start the guest with -boot n');
  },
};
