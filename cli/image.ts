/** `ferry image …`: import, capture (over SSH), list, show, export, commit, clone, remove, verify, gc. */
import { readFileSync } from 'node:fs';
import { FerryError } from '../common/errors.js';
import { formatBytes } from '../common/units.js';
import { cliActor, DataDir } from '../server/context.js';
import { parsePairs } from '../server/db/inventory.js';
import { cloneImage, getImage, imageInfo, listImages, removeImage, setCustomizations } from '../server/store/images.js';
import { commitImage, exportImage } from '../server/store/image-export.js';
import { garbageCollect, verifyImages } from '../server/store/image-gc.js';
import { withAuthorizeFerryItem } from '../server/ssh/authorize.js';
import { importImage } from '../server/store/image-import.js';
import type { Compression } from '../server/store/layers.js';
import { dataDir, parseSubcommand, printJson, printTable, usageError } from '../common/cli.js';
import { validateCustomizations } from '../common/schema/validate.js';
import { captureImage, parseExcludeList } from '../server/ssh/capture.js';
import { parseHostKey } from '../server/ssh/keys.js';
import { parseTarget } from '../server/ssh/target.js';

const USAGE = `ferry image import NAME (--dir DIR | --tar FILE...) [--customizations FILE.json] [--set KEY=VALUE]... [--compression zstd|none] [--no-authorize-ferry]
ferry image capture NAME --from [USER@]HOST[:PORT] [--identity FILE] [--root PATH] [--exclude PATTERN]... [--exclude-from FILE]
                [--no-default-excludes] [--layout-disk DEV]... [--no-layout] [--host-key SHA256:...] [--accept-new-host-key]
                [--compression zstd|none] [--no-authorize-ferry]
ferry image ls [--json]
ferry image show NAME[@VERSION] [--json]
ferry image export NAME[@VERSION] DIR [--devices]
ferry image commit NAME[@VERSION] DIR [--compression zstd|none] [--no-authorize-ferry]
ferry image clone MASTER[@VERSION] NAME [--set KEY=VALUE]... [--customizations FILE.json]
ferry image customize NAME --customizations FILE.json
ferry image rm NAME[@VERSION]
ferry image verify [NAME[@VERSION]] [--json]
ferry image gc [--dry-run] [--json]
(import, capture and commit add the ssh-authorize-ferry item, which authorizes Ferry's SSH key for
root on installed nodes, unless --no-authorize-ferry; every command takes --data DIR)`;

function readCustomizations(file: string | undefined) {
  if (!file) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new FerryError('FERRY_E_SOURCE_MISSING', `cannot read ${file}: ${(e as Error).message}`, { details: { path: file }, hint: 'give an existing JSON file' });
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new FerryError('FERRY_E_BAD_CUSTOMIZATIONS', `${file} is not valid JSON: ${(e as Error).message}`, { details: { path: file }, hint: 'write a JSON array of customization items' });
  }
  return validateCustomizations(v, file);
}

function compression(v: string | undefined): Compression | undefined {
  if (v === undefined) return undefined;
  if (v !== 'zstd' && v !== 'none') throw usageError(`--compression must be zstd or none, not "${v}"`, USAGE);
  return v;
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseSubcommand(
    argv,
    {
      dir: { type: 'string' },
      tar: { type: 'string', multiple: true },
      customizations: { type: 'string' },
      set: { type: 'string', multiple: true },
      compression: { type: 'string' },
      'dry-run': { type: 'boolean' },
      devices: { type: 'boolean' },
      from: { type: 'string' },
      identity: { type: 'string' },
      root: { type: 'string' },
      exclude: { type: 'string', multiple: true },
      'exclude-from': { type: 'string' },
      'no-default-excludes': { type: 'boolean' },
      'host-key': { type: 'string', multiple: true },
      'accept-new-host-key': { type: 'boolean' },
      'no-authorize-ferry': { type: 'boolean' },
      'layout-disk': { type: 'string', multiple: true },
      'no-layout': { type: 'boolean' },
    },
    USAGE,
  );
  if (typeof parsed === 'number') return parsed;
  const { sub, values, positionals } = parsed;
  const need = (n: number, what: string) => {
    if (positionals.length !== n) throw usageError(`ferry image ${sub} needs ${what}`, USAGE);
  };
  const d = new DataDir(dataDir(values), { readOnly: ['ls', 'show', 'export', 'verify'].includes(sub) });
  try {
    switch (sub) {
      case 'import': {
        need(1, 'NAME');
        const info = await importImage(d, positionals[0], {
          dir: values.dir,
          tars: values.tar,
          compression: compression(values.compression),
          customizations: withAuthorizeFerryItem(readCustomizations(values.customizations), values['no-authorize-ferry']),
          inputs: values.set ? parsePairs(values.set, '--set') : undefined,
          actor: cliActor(),
          onScan: (s) => {
            for (const k of s.skipped) process.stderr.write(`ferry: skipped ${k.path}: ${k.reason}\n`);
          },
        });
        if (values.json) printJson(info);
        else process.stdout.write(`imported ${info.name}@${info.version} ${info.digest} (${info.layers.length} layer(s), ${formatBytes(info.size)} stored, ${formatBytes(info.uncompressedSize)} unpacked)\n`);
        return 0;
      }
      case 'capture': {
        need(1, 'NAME');
        if (!values.from) throw usageError('ferry image capture needs --from [USER@]HOST[:PORT]', USAGE);
        const excludes = [...(values.exclude ?? [])];
        if (values['exclude-from']) {
          let text: string;
          try {
            text = readFileSync(values['exclude-from'], 'utf8');
          } catch (e) {
            throw new FerryError('FERRY_E_SOURCE_MISSING', `cannot read --exclude-from ${values['exclude-from']}: ${(e as Error).message}`, { details: { path: values['exclude-from'] }, hint: 'give an existing file with one pattern a line' });
          }
          excludes.push(...parseExcludeList(text));
        }
        const started = Date.now();
        let last = 0;
        const progress = (bytes: number, entries: number, final = false) => {
          const t = Date.now();
          if (!final && t - last < 1000) return;
          last = t;
          const rate = bytes / Math.max(0.001, (t - started) / 1000);
          process.stderr.write(`ferry: captured ${formatBytes(bytes)}, ${entries} entries, ${formatBytes(Math.round(rate))}/s\n`);
        };
        let seen = { bytes: 0, entries: 0 };
        if (values['no-layout'] && values['layout-disk']?.length) throw usageError('--layout-disk and --no-layout exclude each other', USAGE);
        const r = await captureImage(d, positionals[0], {
          target: parseTarget(values.from, '--from'),
          identityFile: values.identity,
          root: values.root,
          excludes,
          noDefaultExcludes: values['no-default-excludes'],
          hostKeys: (values['host-key'] as string[] | undefined)?.map((k) => parseHostKey(k)),
          acceptNew: values['accept-new-host-key'],
          compression: compression(values.compression),
          customizations: withAuthorizeFerryItem(undefined, values['no-authorize-ferry']),
          actor: cliActor(),
          onProgress: (bytes, entries) => {
            seen = { bytes, entries };
            progress(bytes, entries);
          },
          onWarning: (t) => process.stderr.write(`ferry: FERRY_W_CAPTURE_CHANGED: files changed while they were read (the capture is kept): ${t}\n`),
          layoutDisks: values['layout-disk'],
          noLayout: values['no-layout'],
          onLayoutWarning: (t) => process.stderr.write(`ferry: FERRY_W_CAPTURE_NO_LAYOUT: the disk layout was not captured (the image is): ${t}\n`),
        });
        progress(seen.bytes, seen.entries, true);
        const info = r.image;
        if (values.json) printJson({ ...(info ?? {}), onto: r.onto, added: r.added, deleted: r.deleted, layoutPath: r.layoutPath });
        else {
          if (!info) process.stdout.write(`no difference from ${r.onto}: nothing stored\n`);
          else if (r.onto) process.stdout.write(`captured ${info.name}@${info.version} ${info.digest} from ${values.from} onto ${r.onto}: one layer of ${r.added} changed and ${r.deleted} deleted entries (${formatBytes(info.layers[info.layers.length - 1].size)} stored)\n`);
          else process.stdout.write(`captured ${info.name}@${info.version} ${info.digest} from ${values.from} (${formatBytes(info.size)} stored, ${formatBytes(info.uncompressedSize)} unpacked)\n`);
          if (r.layoutPath) process.stdout.write(`layout: ${r.layoutPath} (ferry node add NAME --mac MAC --image ${info ? `${info.name}@${info.version}` : r.onto} --layout ${r.layoutPath})\n`);
        }
        return 0;
      }
      case 'ls': {
        const list = listImages(d);
        if (values.json) printJson(list);
        else
          printTable(
            list.map((i) => ({ name: i.name, version: i.version, layers: i.layers.length, size: formatBytes(i.size), master: i.master ?? '', created: i.createdAt.slice(0, 19), digest: i.digest.slice(0, 19) })),
            ['name', 'version', 'layers', 'size', 'master', 'created', 'digest'],
          );
        return 0;
      }
      case 'show': {
        need(1, 'NAME[@VERSION]');
        const info = imageInfo(getImage(d, positionals[0]));
        if (values.json) printJson(info);
        else {
          process.stdout.write(`${info.name}@${info.version}  ${info.digest}\n`);
          if (info.master) process.stdout.write(`master: ${info.master}\n`);
          process.stdout.write(`created: ${info.createdAt}\nsize: ${formatBytes(info.size)} stored, ${formatBytes(info.uncompressedSize)} unpacked\nlayers:\n`);
          for (const l of info.layers) process.stdout.write(`  ${l.digest}  ${formatBytes(l.size)}  ${l.mediaType}\n`);
          process.stdout.write(`customizations: ${info.customizations.length ? '' : 'none'}\n`);
          for (const c of info.customizations) process.stdout.write(`  ${JSON.stringify(c)}\n`);
          const keys = Object.keys(info.inputs);
          if (keys.length) process.stdout.write(`inputs:\n${keys.map((k) => `  ${k}=${info.inputs[k]}`).join('\n')}\n`);
        }
        return 0;
      }
      case 'export': {
        need(2, 'NAME[@VERSION] DIR');
        const info = await exportImage(d, positionals[0], positionals[1], { devices: values.devices });
        process.stdout.write(`exported ${info.name}@${info.version} into ${positionals[1]} (mode 0700)\n`);
        if (info.skippedDevices) process.stderr.write(`ferry: warning: ${info.skippedDevices} device node(s) of the image not created (on this server they would reach its own devices); --devices creates them\n`);
        return 0;
      }
      case 'commit': {
        need(2, 'NAME[@VERSION] DIR');
        const r = await commitImage(d, positionals[0], positionals[1], { actor: cliActor(), compression: compression(values.compression), authorizeFerry: !values['no-authorize-ferry'] });
        if (values.json) printJson(r);
        else if (!r.image) process.stdout.write(`no changes: ${positionals[1]} is identical to ${positionals[0]}; nothing committed\n`);
        else process.stdout.write(`committed ${r.image.name}@${r.image.version} ${r.image.digest}: ${r.added} entr(ies) added or changed, ${r.deleted} removed\n`);
        return 0;
      }
      case 'clone': {
        need(2, 'MASTER NAME');
        const info = cloneImage(d, positionals[0], positionals[1], {
          inputs: values.set ? parsePairs(values.set, '--set') : undefined,
          customizations: readCustomizations(values.customizations),
          actor: cliActor(),
        });
        if (values.json) printJson(info);
        else process.stdout.write(`cloned ${info.master} as ${info.name}@${info.version}\n`);
        return 0;
      }
      case 'customize': {
        need(1, 'NAME');
        const items = readCustomizations(values.customizations);
        if (!items) throw usageError('ferry image customize needs --customizations FILE.json', USAGE);
        const info = setCustomizations(d, positionals[0], items, cliActor());
        process.stdout.write(`${info.name}@${info.version}: ${items.length} customization item(s)\n`);
        return 0;
      }
      case 'rm': {
        need(1, 'NAME[@VERSION]');
        const removed = removeImage(d, positionals[0], cliActor());
        if (values.json) printJson({ removed });
        else process.stdout.write(`removed ${removed.join(', ')} (run \`ferry image gc\` to free unreferenced layers)\n`);
        return 0;
      }
      case 'verify': {
        if (positionals.length > 1) throw usageError('ferry image verify takes at most one image', USAGE);
        const results = await verifyImages(d, positionals[0]);
        if (values.json) printJson(results);
        else for (const r of results) process.stdout.write(`${r.ok ? 'ok ' : 'BAD'} ${r.digest}${r.problem ? ': ' + r.problem : ''}  (${r.images.join(', ')})\n`);
        const bad = results.filter((r) => !r.ok);
        if (bad.length) {
          throw new FerryError('FERRY_E_VERIFY_FAILED', `${bad.length} of ${results.length} layer(s) failed verification`, {
            details: { bad },
            hint: 'restore the data directory from a backup, or re-import the affected images',
          });
        }
        return 0;
      }
      case 'gc': {
        if (positionals.length) throw usageError('ferry image gc takes no arguments', USAGE);
        const r = garbageCollect(d, cliActor(), values['dry-run']);
        if (values.json) printJson(r);
        else process.stdout.write(`${values['dry-run'] ? 'would remove' : 'removed'} ${r.removed.length} blob(s), ${formatBytes(r.freedBytes)}; ${r.kept} referenced blob(s) kept${r.trees.length ? `; ${r.trees.length} cached update tree(s) ${values['dry-run'] ? 'would go' : 'removed'}` : ''}\n`);
        return 0;
      }
      default:
        throw usageError(`unknown subcommand "image ${sub}"`, USAGE);
    }
  } finally {
    d.close();
  }
}
