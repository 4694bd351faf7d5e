/** `ferry media …`: restore media (a hybrid ISO that boots as a CD or a stick): build, write, customize. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dataDir, parseSubcommand, printJson, usageError } from '../common/cli.js';
import { FerryError } from '../common/errors.js';
import { formatBytes } from '../common/units.js';
import { writeImageToDisk } from '../installer/disk/write-image.js';
import { DataDir } from '../server/context.js';
import { parsePairs } from '../server/db/inventory.js';
import { listMedia, revokeMedium } from '../server/db/media.js';
import { buildMedium, type MediaBuildOptions, type MediaBuildResult } from '../server/media/build.js';
import { customizeMedium } from '../server/media/customize.js';
import { importMediumRecords } from '../server/media/records.js';

const SOURCE = '(--node NAME | --image REF --layout FILE [--set KEY=VALUE]...) [--unattended] [--label L] [--server URL] [--drivers virtual|generic] [--boot-dir DIR]';
const USAGE = `ferry media build --out FILE.iso ${SOURCE}
ferry media write --disk DEV --yes (--iso FILE.iso | ${SOURCE})
ferry media customize FILE.iso (--node NAME | [--set KEY=VALUE]... [--layout FILE] [--server URL])
ferry media list [--json]
ferry media revoke ID
ferry media records FILE|DEV [--json]
(every command takes --data DIR; --boot-dir defaults to DATA/boot, where vmlinuz and initrd.img are)`;

function readLayout(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new FerryError('FERRY_E_SOURCE_MISSING', `cannot read the layout ${file}: ${(e as Error).message}`, { details: { path: file }, hint: 'give an existing layout XML file with --layout' });
  }
}

function buildOptions(v: Record<string, any>, out: string): MediaBuildOptions {
  return {
    out,
    node: v.node,
    image: v.image,
    layoutXml: readLayout(v.layout),
    layoutSource: v.layout,
    set: v.set ? parsePairs(v.set, '--set') : undefined,
    unattended: !!v.unattended,
    label: v.label,
    server: v.server,
    drivers: v.drivers,
    bootDir: v['boot-dir'] ?? join(dataDir(v), 'boot'),
  };
}

function say(r: MediaBuildResult): void {
  process.stderr.write(`ferry: medium ${r.medium} ${r.out}: ${r.image} for ${r.node}, label ${r.label}, ${r.layers.length} layers, ${formatBytes(r.bytes)} in ${r.seconds.toFixed(1)} s\n`);
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseSubcommand(
    argv,
    {
      out: { type: 'string' },
      node: { type: 'string' },
      image: { type: 'string' },
      layout: { type: 'string' },
      set: { type: 'string', multiple: true },
      unattended: { type: 'boolean' },
      label: { type: 'string' },
      server: { type: 'string' },
      'boot-dir': { type: 'string' },
      drivers: { type: 'string' },
      disk: { type: 'string' },
      iso: { type: 'string' },
      yes: { type: 'boolean' },
    },
    USAGE,
  );
  if (typeof parsed === 'number') return parsed;
  const { sub, values: v, positionals } = parsed;
  if (positionals.length && !['customize', 'revoke', 'records'].includes(sub)) throw usageError(`ferry media ${sub} takes no positional arguments`, USAGE);
  switch (sub) {
    case 'build': {
      if (!v.out) throw usageError('--out FILE.iso is required', USAGE);
      const d = new DataDir(dataDir(v));
      try {
        const r = await buildMedium(d, buildOptions(v, v.out));
        if (v.json) printJson(r);
        else say(r);
      } finally {
        d.close();
      }
      return 0;
    }
    case 'write': {
      if (!v.disk) throw usageError('--disk DEV is required', USAGE);
      if (!v.yes) {
        throw new FerryError('FERRY_E_NOT_CONFIRMED', `writing the medium erases ${v.disk}; add --yes to confirm`, { details: { disks: [v.disk] }, hint: 'add --yes after checking the device name (lsblk)' });
      }
      let iso = v.iso as string | undefined;
      let tmp: string | undefined;
      try {
        if (!iso) {
          tmp = mkdtempSync(join(tmpdir(), 'ferry-media-write-'));
          const d = new DataDir(dataDir(v));
          try {
            const r = await buildMedium(d, buildOptions(v, join(tmp, 'medium.iso')));
            say(r);
            iso = r.out;
          } finally {
            d.close();
          }
        }
        const w = await writeImageToDisk(iso, v.disk);
        if (v.json) printJson(w);
        else process.stderr.write(`ferry: wrote ${formatBytes(w.bytes)} onto ${w.disk} in ${w.seconds.toFixed(1)} s\n`);
      } finally {
        if (tmp) rmSync(tmp, { recursive: true, force: true });
      }
      return 0;
    }
    case 'customize': {
      if (positionals.length !== 1) throw usageError('ferry media customize takes one FILE.iso', USAGE);
      for (const o of ['out', 'image', 'label', 'unattended', 'disk', 'iso', 'drivers', 'boot-dir']) {
        if (v[o] !== undefined) throw usageError(`--${o} is fixed when the medium is built; customize changes only the node's part (--node, --set, --layout, --server)`, USAGE);
      }
      const d = v.node || v.server ? new DataDir(dataDir(v)) : undefined;
      try {
        const r = await customizeMedium(d, { iso: positionals[0], node: v.node, set: v.set ? parsePairs(v.set, '--set') : undefined, layoutXml: readLayout(v.layout), layoutSource: v.layout, server: v.server });
        if (v.json) printJson(r);
        else process.stderr.write(`ferry: medium ${r.iso} now installs ${r.image} for ${r.node} (rewrote ${formatBytes(r.bytes)} in place in ${r.seconds.toFixed(2)} s)\n`);
      } finally {
        d?.close();
      }
      return 0;
    }
    case 'list': {
      const d = new DataDir(dataDir(v));
      try {
        const list = listMedia(d);
        if (v.json) printJson(list);
        else {
          process.stdout.write('ID  LABEL                             NODE              SERVER                          RECORDS  STATE\n');
          for (const m of list) process.stdout.write(`${String(m.id).padEnd(3)} ${m.label.padEnd(33)} ${m.node.padEnd(17)} ${(m.server || '-').padEnd(31)} ${String(m.records).padEnd(8)} ${m.revokedAt ? `revoked ${m.revokedAt}` : 'active'}\n`);
        }
      } finally {
        d.close();
      }
      return 0;
    }
    case 'revoke': {
      if (positionals.length !== 1 || !/^[0-9]{1,9}$/.test(positionals[0])) throw usageError('ferry media revoke takes one medium ID (ferry media list shows them)', USAGE);
      const d = new DataDir(dataDir(v));
      try {
        const m = revokeMedium(d, Number(positionals[0]), 'cli');
        if (v.json) printJson(m);
        else process.stderr.write(`ferry: medium ${m.id} (${m.label}, node ${m.node}) revoked at ${m.revokedAt}: its install records are refused from now on (FERRY_E_MEDIUM_REVOKED); the ${m.records} it posted stay in the history\n`);
      } finally {
        d.close();
      }
      return 0;
    }
    case 'records': {
      if (positionals.length !== 1) throw usageError('ferry media records takes one FILE.iso or DEV (the stick)', USAGE);
      const d = new DataDir(dataDir(v));
      try {
        const r = importMediumRecords(d, positionals[0]);
        if (v.json) printJson(r);
        else {
          process.stderr.write(`ferry: medium ${r.label} (${r.medium}): ${r.records.length} install record(s)${r.damaged.length ? `, ${r.damaged.length} damaged slot(s) skipped` : ''}\n`);
          for (const x of r.records) process.stdout.write(`${x.endedAt}  ${x.node}  ${x.status}${x.error ? ` ${x.error}` : ''}  deployment ${x.deployment}${x.duplicate ? ' (already in the history)' : ''}\n`);
        }
      } finally {
        d.close();
      }
      return 0;
    }
    default:
      throw usageError(`unknown subcommand "${sub}"`, USAGE);
  }
}
