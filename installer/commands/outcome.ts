/** What `ferry-installer run` and `ferry install` share: their options and how an outcome is reported. */
import { parse as parseOptions } from '../../common/cli.js';
import { FerryError } from '../../common/errors.js';
import type { runInstall } from '../install.js';

export const OPTIONS = {
  server: { type: 'string' }, token: { type: 'string' }, bootif: { type: 'string' }, finish: { type: 'string' },
  disk: { type: 'string', multiple: true }, root: { type: 'string' }, yes: { type: 'boolean' }, cmdline: { type: 'string' },
  node: { type: 'string' }, 'admin-token': { type: 'string' }, 'no-initramfs': { type: 'boolean' },
  'seed-wait': { type: 'string' },
  medium: { type: 'string' }, 'medium-device': { type: 'string' }, unattended: { type: 'boolean' }, 'exclude-disk': { type: 'string', multiple: true },
} as const;

/** `--seed-wait S` (or ferry.seed_wait=S on the kernel command line): whole seconds, 0 to 3600. */
export function seedWait(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[0-9]{1,4}$/.test(v.trim()) || Number(v) > 3600) {
    throw new FerryError('FERRY_E_BAD_VALUE', `--seed-wait "${v.slice(0, 40)}" is not a number of seconds from 0 to 3600`, { details: { seedWait: v.slice(0, 40) }, hint: 'give whole seconds, such as --seed-wait 180 (0: stop seeding as soon as the install is done)' });
  }
  return Number(v);
}

export function parse(argv: string[], u: string): Record<string, any> {
  return parseOptions(argv, OPTIONS, u, { positionals: false }).values;
}

export function report(outcome: Awaited<ReturnType<typeof runInstall>>): number {
  const r = outcome.result;
  if (r.status === 'success') {
    process.stderr.write(`ferry: install finished successfully${outcome.eventsDelivered ? '' : ' (some progress events did not reach the server)'}\n`);
    return 0;
  }
  const e = r.error!;
  const bar = '='.repeat(72);
  process.stderr.write(`\n${bar}\nFERRY INSTALL ${r.status === 'aborted' ? 'ABORTED' : 'FAILED'} in stage "${e.phase}"\n${e.code}: ${e.message}\n`);
  const d = e.details as Record<string, unknown> | undefined;
  if (d?.doing) process.stderr.write(`while: ${d.doing}\n`);
  if (d?.argv) process.stderr.write(`command: ${(d.argv as string[]).join(' ')}\n`);
  if (d?.stderrTail) process.stderr.write(`output:\n${d.stderrTail}\n`);
  if (d?.hint) process.stderr.write(`fix: ${d.hint}\n`);
  process.stderr.write(`${bar}\n`);
  return 1;
}

