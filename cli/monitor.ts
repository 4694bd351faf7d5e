/**
 * `ferry monitor`: a live table of deployments (id, node, transport, stage, percent, MB/s, ETA,
 * the age of the last word from the installer, state, a failure's error) from the server's
 * event stream, fitted to the terminal. `--json` prints the rows once for scripts;
 * `--json --follow` prints them as one JSON line per change. When the server goes away the
 * monitor says so and reconnects, for at most --give-up SECONDS (default 120), then fails; its
 * first connection is tried the same way (a monitor started with or just before `ferry serve`
 * waits for it), only a refusal (a wrong token) fails at once.
 */
import { request, type ClientRequest } from 'node:http';
import { FerryError } from '../common/errors.js';
import { ADMIN_ROUTES } from '../common/protocol.js';
import { MONITOR_COLUMNS, MonitorState, rowCells, type MonitorRow } from '../server/monitor.js';
import { dataDir, intOption, requireDataDir, parse, printJson, readAdminToken, serverUrl, usageError } from '../common/cli.js';
import { printable } from '../common/text.js';

const USAGE = 'ferry monitor [--server URL] [--once] [--json [--follow]] [--give-up SECONDS] [--data DIR]';

/** Parse a server-sent event stream into (event, data) pairs. */
export class SseParser {
  private buf = '';
  constructor(private on: (type: string, data: string) => void) {}
  push(text: string): void {
    this.buf += text;
    let i: number;
    while ((i = this.buf.indexOf('\n\n')) >= 0) {
      const block = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      let type = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const c = line.indexOf(':');
        const k = c < 0 ? line : line.slice(0, c);
        const v = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
        if (k === 'event') type = v;
        else if (k === 'data') data.push(v);
      }
      if (data.length) this.on(type, data.join('\n'));
    }
  }
}

/**
 * What to write to replace the table shown last (`prev`) with `next`. On a terminal the cursor
 * goes back up over the old table and clears below it, so the output above (a script's earlier
 * steps, the shell's history) stays on the screen; elsewhere (a log file, a pipe) a table is
 * written again only when it changed, not on every event (heartbeats, log lines) that arrives.
 */
export function frame(prev: string | undefined, next: string, tty: boolean): string {
  if (prev === next) return '';
  if (!tty || prev === undefined) return next;
  const lines = prev.split('\n').length - 1;
  return `\r\x1b[${lines}A\x1b[J${next}`;
}

/** The terminal's size, when the table is drawn on one. */
export interface TermSize {
  rows: number;
  columns: number;
}

/**
 * The table as text: every row, or on a terminal as many as fit under the header with one line
 * left for "+N more (…)" and one for the cursor, each line cut to the terminal's width (a
 * wrapped line would break the redraw and flood the scrollback).
 */
export function renderTable(all: MonitorRow[], now: number, term?: TermSize): string {
  const fit = term ? Math.max(1, term.rows - 3) : Infinity;
  const shown = all.length > fit ? all.slice(0, fit) : all;
  const hidden = all.slice(shown.length);
  const rows = shown.map((r) => rowCells(r, now)).map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, printable(String(v))])) as Record<string, string>);
  const cols = [...MONITOR_COLUMNS];
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => r[c].length)));
  const cut = (l: string) => (term && l.length > term.columns ? l.slice(0, Math.max(1, term.columns - 1)) + '…' : l);
  const line = (cells: string[]) => cut(cells.map((x, i) => x.padEnd(w[i])).join('  ').trimEnd());
  const out = [line(cols.map((c) => c.toUpperCase())), ...rows.map((r) => line(cols.map((c) => r[c])))];
  if (hidden.length) {
    const by = new Map<string, number>();
    for (const r of hidden) by.set(r.state, (by.get(r.state) ?? 0) + 1);
    out.push(cut(`+${hidden.length} more (${[...by].map(([k, n]) => `${n} ${k}`).join(', ')})`));
  }
  return out.join('\n') + '\n';
}

/** After losing the server: the wait before the next try (1 s, doubling, at most 5 s). */
export function reconnectDelay(attempt: number): number {
  return Math.min(5000, 1000 * 2 ** Math.max(0, attempt));
}

type Session = { end: 'stopped' } | { end: 'lost'; reason: string };

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { server: { type: 'string' }, once: { type: 'boolean' }, follow: { type: 'boolean' }, token: { type: 'string' }, 'give-up': { type: 'string' } },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (positionals.length) throw usageError(`unexpected argument "${positionals[0]}"`, USAGE);
  const giveUpS = intOption(values, 'give-up', { min: 1, max: 86_400, dflt: 120 }, USAGE);
  const dir = dataDir(values);
  // Read-only: the token and the server's address come from DATA unless both are given.
  if (!(values.server && values.token)) requireDataDir(dir);
  const token = readAdminToken(dir, { given: values.token });
  const once = values.once || (values.json && !values.follow);
  const state = new MonitorState();
  const tty = !!process.stdout.isTTY && !values.json;
  const term = (): TermSize | undefined => (tty && process.stdout.rows && process.stdout.columns ? { rows: process.stdout.rows, columns: process.stdout.columns } : undefined);
  const say = (m: string) => process.stderr.write(`ferry: ${m}\n`);

  let stopped = false;
  let current: ClientRequest | undefined;
  let wake: (() => void) | undefined;
  const onSignal = () => {
    stopped = true;
    current?.destroy();
    wake?.();
  };
  process.once('SIGINT', onSignal);

  let shown: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  const show = () => {
    timer = undefined;
    if (values.json) return void process.stdout.write(JSON.stringify(state.rows()) + '\n');
    const next = renderTable(state.rows(), Date.now(), term());
    process.stdout.write(frame(shown, next, tty));
    shown = next;
  };
  // The SEEN column ages between events: redrawn every second on a terminal.
  const ticker = tty && !once ? setInterval(() => timer ?? show(), 1000) : undefined;

  /** One connection to the event stream, until it ends. Refusals reject; an unreachable server is `lost`. */
  const session = (base: string, onOpen: () => void) =>
    new Promise<Session>((resolve, reject) => {
      let opened = false;
      const lost = (reason: string) => (stopped ? resolve({ end: 'stopped' }) : resolve({ end: 'lost', reason }));
      const req = request(new URL(ADMIN_ROUTES.deployments.replace(/deployments$/, 'events'), base), { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } }, (res) => {
        if (res.statusCode !== 200) {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => {
            let msg = body;
            try {
              msg = JSON.parse(body).error.message;
            } catch {
              /* not an error body */
            }
            reject(new FerryError('FERRY_E_SERVER_REFUSED', `the server at ${base} answered ${res.statusCode}: ${msg.slice(0, 500)}`, { details: { status: res.statusCode }, hint: 'check --server and the admin token (--data DIR)' }));
          });
          return;
        }
        opened = true;
        onOpen();
        res.setEncoding('utf8');
        // The server sends a heartbeat comment every 15 s: silence for 45 s is a lost connection.
        res.socket.setTimeout(45_000, () => req.destroy(new Error('no data for 45 s')));
        const parser = new SseParser((type, data) => {
          state.apply(type, JSON.parse(data));
          if (once && type === 'snapshot') {
            if (values.json) printJson(state.rows());
            else process.stdout.write(renderTable(state.rows(), Date.now(), term()));
            stopped = true;
            req.destroy();
            resolve({ end: 'stopped' });
            return;
          }
          // Redraw at most every 500 ms however fast events arrive.
          if (!timer) timer = setTimeout(show, values.json ? 0 : 500);
        });
        res.on('data', (c: string) => parser.push(c));
        res.on('end', () => lost('the server closed the connection'));
        res.on('error', (e) => lost(e.message));
        res.on('close', () => lost('the connection closed'));
      });
      current = req;
      req.on('error', (e) => {
        if (stopped) return resolve({ end: 'stopped' });
        lost(opened ? e.message : `cannot connect: ${e.message}`);
      });
      req.end();
    });

  try {
    let connected = false;
    // The server's address as last read, for the messages while DATA names none.
    let lastBase: string | undefined;
    let lostSince: number | undefined;
    for (let attempt = 0; ; ) {
      // The server may have come back on another port: its address is read again each time.
      let base: string;
      try {
        base = serverUrl(values);
      } catch {
        base = '(no server recorded)';
      }
      if (!base.startsWith('(')) lastBase = base;
      const where = lastBase ? ` at ${lastBase}` : '';
      const r: Session = base.startsWith('(')
        ? { end: 'lost', reason: 'no running server recorded in the data directory' }
        : await session(base, () => {
            attempt = 0;
            if (lostSince !== undefined) say(`${connected ? 'reconnected' : 'connected'} to the server at ${base}`);
            connected = true;
            lostSince = undefined;
          });
      if (r.end === 'stopped' || stopped) return 0;
      if (lostSince === undefined) {
        lostSince = Date.now();
        // The first connection is retried like a reconnect: the server may be starting.
        if (connected) say(`lost the server at ${base} (${r.reason}); reconnecting, for at most ${giveUpS} s (--give-up)`);
        else say(`cannot reach the server${where} (${r.reason}); retrying, for at most ${giveUpS} s (--give-up)`);
        // The next table is drawn whole below the message, not over the lines above it.
        shown = undefined;
      }
      if (Date.now() - lostSince >= giveUpS * 1000) {
        throw new FerryError('FERRY_E_MONITOR_GAVE_UP', `the server${where} has not answered for ${giveUpS} s (${r.reason})${connected ? '' : '; the monitor never reached it'}`, {
          details: { url: lastBase, seconds: giveUpS },
          hint: 'start `ferry serve` again (the monitor reconnects by itself while it waits), or give a longer --give-up SECONDS',
        });
      }
      const wait = Math.min(reconnectDelay(attempt++), Math.max(0, lostSince + giveUpS * 1000 - Date.now()));
      await new Promise<void>((res) => {
        wake = res;
        setTimeout(res, wait);
      });
      wake = undefined;
      if (stopped) return 0;
    }
  } finally {
    process.removeListener('SIGINT', onSignal);
    if (ticker) clearInterval(ticker);
    if (timer) clearTimeout(timer);
  }
}
