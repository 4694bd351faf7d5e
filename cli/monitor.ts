/**
 * `ferry monitor`: a live table of deployments (node, transport, stage, percent, MB/s, ETA,
 * state) from the server's event stream. `--json` prints the rows once for scripts;
 * `--json --follow` prints them as one JSON line per change.
 */
import { request } from 'node:http';
import { FerryError } from '../common/errors.js';
import { ADMIN_ROUTES } from '../common/protocol.js';
import { MonitorState, rowCells } from '../server/monitor.js';
import { dataDir, requireDataDir, parse, printJson, readAdminToken, serverUrl, usageError } from '../common/cli.js';
import { printable } from '../common/text.js';

const USAGE = 'ferry monitor [--server URL] [--once] [--json [--follow]] [--data DIR]';

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

function render(state: MonitorState): string {
  const rows = state.rows().map(rowCells).map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, printable(String(v))])) as typeof r);
  const cols = ['node', 'via', 'stage', 'percent', 'mb/s', 'eta', 'state'];
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => cells.map((x, i) => x.padEnd(w[i])).join('  ').trimEnd();
  return [line(cols.map((c) => c.toUpperCase())), ...rows.map((r) => line(cols.map((c) => r[c])))].join('\n') + '\n';
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { server: { type: 'string' }, once: { type: 'boolean' }, follow: { type: 'boolean' }, token: { type: 'string' } }, USAGE);
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (positionals.length) throw usageError(`unexpected argument "${positionals[0]}"`, USAGE);
  const dir = dataDir(values);
  // Read-only: the token and the server's address come from DATA unless both are given.
  if (!(values.server && values.token)) requireDataDir(dir);
  const base = serverUrl(values);
  const token = readAdminToken(dir, { given: values.token });
  const once = values.once || (values.json && !values.follow);
  const state = new MonitorState();
  const tty = process.stdout.isTTY && !values.json;
  return new Promise<number>((resolve, reject) => {
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
          reject(new FerryError('FERRY_E_SERVER_REFUSED', `the server at ${base} answered ${res.statusCode}: ${msg}`, { details: { status: res.statusCode }, hint: 'check --server and the admin token (--data DIR)' }));
        });
        return;
      }
      res.setEncoding('utf8');
      let timer: NodeJS.Timeout | undefined;
      let shown: string | undefined;
      const show = () => {
        timer = undefined;
        if (values.json) return void process.stdout.write(JSON.stringify(state.rows()) + '\n');
        const next = render(state);
        process.stdout.write(frame(shown, next, !!tty));
        shown = next;
      };
      const parser = new SseParser((type, data) => {
        state.apply(type, JSON.parse(data));
        if (once && type === 'snapshot') {
          if (values.json) printJson(state.rows());
          else process.stdout.write(render(state));
          req.destroy();
          resolve(0);
          return;
        }
        // Redraw at most every 500 ms however fast events arrive.
        if (!timer) timer = setTimeout(show, values.json ? 0 : 500);
      });
      res.on('data', (c: string) => parser.push(c));
      res.on('end', () => resolve(0));
    });
    req.on('error', (e) => reject(new FerryError('FERRY_E_SERVER_UNREACHABLE', `cannot reach the server at ${base}: ${e.message}`, { details: { url: base }, hint: 'start `ferry serve`, or give the right --server URL' })));
    req.end();
    const stop = () => {
      req.destroy();
      resolve(0);
    };
    process.once('SIGINT', stop);
  });
}
