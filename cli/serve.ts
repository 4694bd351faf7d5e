/** `ferry serve`: run the image server until interrupted. */
import { parse, dataDir, usageError } from '../common/cli.js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseListen, startServer } from '../server/index.js';
import { checkLogOptions } from '../server/log.js';
import { sessionLimits } from '../server/ui/sessions.js';
import { parseByteRate } from '../common/units.js';

function ensureDir(d: string): string {
  mkdirSync(d, { recursive: true });
  return d;
}

const USAGE =
  'ferry serve [--data DIR] [--listen HOST:PORT] [--public-url URL] [--boot-dir DIR] [--kernel-arg ARG]... [--tftp [HOST:PORT]] [--tftp-root DIR] [--lost-after SECONDS]\n' +
  '            [--discover [--discover-finish poweroff|wait]]   (unknown MACs boot the inventory mode)\n' +
  '            [--log-format text|json] [--log-level info|debug|warn|error|silent]\n' +
  '            [--multicast-interface IF] [--multicast-group A.B.C.D/P] [--multicast-ports LO-HI] [--mirror URL[@CIDR]]... [--torrent-web-seed] [--torrent-seed-rate RATE]\n' +
  '            [--session-idle DURATION] [--session-max-age DURATION]   (web console sessions; default 30m idle, 12h at most)';

/**
 * `--tftp` takes an optional HOST:PORT, which parseArgs cannot express: `--tftp X` and
 * `--tftp=X` become `--tftp --tftp-listen X` when X looks like an address.
 */
export function tftpArgs(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.match(/^--tftp=(.*)$/);
    if (eq) out.push('--tftp', '--tftp-listen', eq[1]);
    else if (a === '--tftp' && i + 1 < argv.length && /^(\[[^\]]+\]|[^-][^\s]*)?:?\d{1,5}$/.test(argv[i + 1])) out.push('--tftp', '--tftp-listen', argv[++i]);
    else out.push(a);
  }
  return out;
}

/** `--tftp` without an address: port 69 on the host HTTP listens on (`--listen`). */
export function tftpDefaultListen(listen: string): string {
  const { host } = parseListen(listen);
  return `${host.includes(':') ? `[${host}]` : host}:69`;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    tftpArgs(argv),
    {
      listen: { type: 'string' },
      'public-url': { type: 'string' },
      'boot-dir': { type: 'string' },
      'kernel-arg': { type: 'string', multiple: true },
      // --tftp alone serves TFTP on port 69 of the --listen host; --tftp HOST:PORT elsewhere (see tftpArgs).
      tftp: { type: 'boolean' },
      'tftp-listen': { type: 'string' },
      'tftp-root': { type: 'string' },
      'lost-after': { type: 'string' },
      // Multicast sessions (server/multicast/sessions.ts): default the interface that reaches the node.
      'multicast-interface': { type: 'string' },
      'multicast-group': { type: 'string' },
      'multicast-ports': { type: 'string' },
      // Static HTTP mirrors of DATA/blobs, tried by nodes in order before this server.
      mirror: { type: 'string', multiple: true },
      // The web console's sessions (server/ui/sessions.ts): idle expiry and lifetime, e.g. 15m, 8h.
      'session-idle': { type: 'string' },
      'session-max-age': { type: 'string' },
      // The server's log (server/log.ts): a line per request, boot decision, TFTP transfer, state change.
      'log-format': { type: 'string' },
      'log-level': { type: 'string' },
      // Torrents list the blob's URL as web seed instead of the server seeding as a peer (server/torrent/seeder.ts).
      'torrent-web-seed': { type: 'boolean' },
      // Unknown MACs boot the inventory mode with a discovery token, then power off or wait (server/boot/decide.ts).
      discover: { type: 'boolean' },
      'discover-finish': { type: 'string' },
      // The server's seeder's upload cap per layer, bytes per second (6MiB, 800K; common/units.ts parseByteRate).
      'torrent-seed-rate': { type: 'string' },
    },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (positionals.length) throw usageError(`unexpected argument "${positionals[0]}"`, USAGE);
  const lostAfter = values['lost-after'];
  if (lostAfter !== undefined && (!/^[0-9]{1,7}$/.test(lostAfter) || Number(lostAfter) < 1)) {
    throw usageError(`--lost-after "${lostAfter}" is not a number of seconds (1 to 9999999)`, USAGE);
  }
  const finish = values['discover-finish'];
  if (finish !== undefined && !values.discover) throw usageError('--discover-finish needs --discover', USAGE);
  if (finish !== undefined && finish !== 'poweroff' && finish !== 'wait') throw usageError(`--discover-finish "${finish}" is not poweroff or wait`, USAGE);
  const sessions = sessionLimits({ idle: values['session-idle'], maxAge: values['session-max-age'] });
  const logOpts = checkLogOptions(values['log-format'], values['log-level']);
  const listen = values.listen ?? '0.0.0.0:8080';
  const seedRate = values['torrent-seed-rate'] !== undefined ? parseByteRate(values['torrent-seed-rate'], '--torrent-seed-rate') : undefined;
  if (seedRate !== undefined && values['torrent-web-seed']) throw usageError('--torrent-seed-rate caps the server\'s seeder, which --torrent-web-seed turns off: give one of them', USAGE);
  const srv = await startServer({
    dataDir: dataDir(values),
    listen,
    log: logOpts,
    publicUrl: values['public-url'],
    bootDir: values['boot-dir'],
    kernelArgs: values['kernel-arg'],
    discover: values.discover ? { finish: (finish as 'poweroff' | 'wait' | undefined) ?? 'poweroff' } : undefined,
    lostAfterMs: lostAfter !== undefined ? Number(lostAfter) * 1000 : undefined,
    tftp:
      values.tftp || values['tftp-listen']
        ? { listen: values['tftp-listen'] ?? tftpDefaultListen(listen), root: values['tftp-root'] ?? ensureDir(join(dataDir(values), 'tftp')) }
        : undefined,
    mirrors: values.mirror,
    sessions,
    torrentSeed: !values['torrent-web-seed'],
    torrentSeedRate: seedRate,
    multicast: { interface: values['multicast-interface'], group: values['multicast-group'], ports: values['multicast-ports'] },
  });
  const tftp = srv.tftp;
  if (values.json) process.stdout.write(JSON.stringify({ url: srv.url, publicUrl: srv.publicUrl, port: srv.port, ...(tftp ? { tftp: { address: tftp.address, port: tftp.port } } : {}) }) + '\n');
  else {
    process.stdout.write(`ferry: serving ${srv.dataDir} at ${srv.url} (nodes use ${srv.publicUrl})\n`);
    if (tftp) process.stdout.write(`ferry: TFTP at ${tftp.address}:${tftp.port} (read-only)\n`);
    if (values.discover) process.stdout.write(`ferry: discovery on: unknown machines boot the inventory mode, then ${finish === 'wait' ? 'wait' : 'power off'} (ferry node ls --discovered)\n`);
  }
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await srv.close();
  return 0;
}
