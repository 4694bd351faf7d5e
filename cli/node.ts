/** `ferry node …`: machines known by their MACs. */
import { readFileSync } from 'node:fs';
import { FerryError } from '../common/errors.js';
import { cliActor, DataDir } from '../server/context.js';
import { addNode, getNode, listDiscovered, listNodes, parsePairs, removeNode, setNode, type NodeChanges } from '../server/db/inventory.js';
import { selectNodes } from '../server/db/groups.js';
import { nextBoot } from '../server/boot/decide.js';
import { groupHwProperties } from '../common/inventory.js';
import { enlist, serialMatches } from '../server/db/discovery.js';
import { formatBytes } from '../common/units.js';
import { normalizeMac } from '../common/mac.js';
import { dataDir, parseSubcommand, printJson, printTable, usageError } from '../common/cli.js';

const USAGE = `ferry node add NAME --mac MAC [--mac MAC]... [--image IMG] [--layout FILE] [--set KEY=VALUE]... [--prop KEY=VALUE]... [--group G]...
                [--bootloader auto|none|bios|uefi] [--finish reboot|poweroff|stay] [--disk-map FROM=TO]...
                [--transport http|torrent|multicast]   (the node's default transport for ferry deploy)
                [--address HOST[:PORT]] [--host-key SHA256:...]...   (SSH: where Ferry reaches it, the host keys it trusts)
                [--power ipmi|redfish|qemu|wol|manual] [--power-address ADDR[:PORT]] [--power-user U] [--power-password-file F]
ferry node set NAME [same options as add] [--add-mac MAC] [--remove-mac MAC] [--unset KEY] [--unprop KEY] [--ungroup G]
                [--no-layout] [--no-image] [--no-transport] [--no-address] [--forget-host-keys] [--no-power] [--boot install|local]
ferry node ls [SELECTOR...] [--discovered] [--json]     SELECTOR: NAME, @GROUP or PROPERTY=VALUE
ferry node enlist MAC... --name NAME|PATTERN [--image IMG] [--layout FILE] [--group G]... [--new] [--json]
                (PATTERN: {serial}, {mac}, {n}, e.g. rack1-{serial}; --new: even when the serial matches a node)
ferry node show NAME [--json]
ferry node rm NAME
(--set sets customization inputs such as hostname, network.mode, network.address; --prop sets properties)`;

const OPTIONS = {
  mac: { type: 'string', multiple: true },
  'add-mac': { type: 'string', multiple: true },
  'remove-mac': { type: 'string', multiple: true },
  image: { type: 'string' },
  'no-image': { type: 'boolean' },
  layout: { type: 'string' },
  'no-layout': { type: 'boolean' },
  set: { type: 'string', multiple: true },
  unset: { type: 'string', multiple: true },
  prop: { type: 'string', multiple: true },
  unprop: { type: 'string', multiple: true },
  group: { type: 'string', multiple: true },
  ungroup: { type: 'string', multiple: true },
  bootloader: { type: 'string' },
  finish: { type: 'string' },
  'disk-map': { type: 'string', multiple: true },
  boot: { type: 'string' },
  transport: { type: 'string' },
  'no-transport': { type: 'boolean' },
  discovered: { type: 'boolean' },
  address: { type: 'string' },
  'no-address': { type: 'boolean' },
  'host-key': { type: 'string', multiple: true },
  'forget-host-keys': { type: 'boolean' },
  power: { type: 'string' },
  'power-address': { type: 'string' },
  'power-user': { type: 'string' },
  'power-password-file': { type: 'string' },
  'no-power': { type: 'boolean' },
  name: { type: 'string' },
  new: { type: 'boolean' },
} as const;

/**
 * The power password from its file (never from the command line, where ps would show it): the
 * first line, without its line end.
 */
function readPasswordFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new FerryError('FERRY_E_SOURCE_MISSING', `cannot read the power password file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { details: { path: file }, hint: 'give a readable file whose first line is the BMC password (mode 0600)' });
  }
  return text.split(/\r?\n/)[0];
}

function powerChanges(values: Record<string, any>): NodeChanges['power'] {
  if (values['no-power']) return { driver: null };
  const p = { driver: values.power, address: values['power-address'], user: values['power-user'], password: values['power-password-file'] ? readPasswordFile(values['power-password-file']) : undefined };
  return Object.values(p).some((v) => v !== undefined) ? p : undefined;
}

function changes(values: Record<string, any>): NodeChanges {
  const c: NodeChanges = {
    macs: values.mac,
    addMacs: values['add-mac'],
    removeMacs: values['remove-mac'],
    image: values['no-image'] ? null : values.image,
    inputs: values.set ? parsePairs(values.set, '--set') : undefined,
    unsetInputs: values.unset,
    properties: values.prop ? parsePairs(values.prop, '--prop') : undefined,
    unsetProperties: values.unprop,
    groups: values.group,
    removeGroups: values.ungroup,
    bootloader: values.bootloader,
    finish: values.finish,
    bootAction: values.boot,
    clearLayout: values['no-layout'],
    transport: values['no-transport'] ? null : values.transport,
    address: values['no-address'] ? null : values.address,
    hostKeys: values['host-key'],
    clearHostKeys: values['forget-host-keys'],
    power: powerChanges(values),
  };
  if (values['disk-map']) {
    const m: Record<string, string> = {};
    for (const p of values['disk-map'] as string[]) {
      const [from, to] = p.split('=');
      if (!from?.startsWith('/dev/') || !to?.startsWith('/dev/')) throw usageError(`--disk-map "${p}" is not /dev/FROM=/dev/TO`, USAGE);
      m[from] = to;
    }
    c.diskMap = m;
  }
  if (values.layout) {
    try {
      c.layoutXml = readFileSync(values.layout, 'utf8');
    } catch (e) {
      throw new FerryError('FERRY_E_SOURCE_MISSING', `cannot read the layout ${values.layout}: ${(e as Error).message}`, { details: { path: values.layout }, hint: 'give an existing layout XML file' });
    }
    c.layoutSource = values.layout;
  }
  return c;
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseSubcommand(argv, OPTIONS, USAGE);
  if (typeof parsed === 'number') return parsed;
  const { sub, values, positionals } = parsed;
  const d = new DataDir(dataDir(values), { readOnly: sub === 'ls' || sub === 'show' });
  try {
    switch (sub) {
      case 'add': {
        if (positionals.length !== 1) throw usageError('ferry node add needs NAME', USAGE);
        const n = addNode(d, positionals[0], changes(values), cliActor());
        if (values.json) printJson(n);
        else process.stdout.write(`added node ${n.name} (${n.macs.join(', ')})\n`);
        return 0;
      }
      case 'set': {
        if (positionals.length !== 1) throw usageError('ferry node set needs NAME', USAGE);
        const n = setNode(d, positionals[0], changes(values), cliActor());
        if (values.json) printJson(n);
        else process.stdout.write(`updated node ${n.name}\n`);
        return 0;
      }
      case 'ls': {
        if (values.discovered) {
          const nodes = listNodes(d);
          // A report whose serial is an existing node's (a replaced board) says so; enlist never merges it.
          const list = listDiscovered(d).map((x) => ({ ...x, matches: serialMatches(x.inventory?.serial, x.mac, nodes).map((m) => m.node) }));
          if (values.json) printJson(list);
          else
            printTable(
              list.map((x) => {
                const i = x.inventory;
                return {
                  mac: x.mac,
                  'last seen': x.lastSeen.slice(0, 19),
                  seen: x.seen,
                  vendor: i?.vendor ?? (i ? '' : '(no report)'),
                  product: i?.product,
                  serial: i?.serial,
                  cpus: i ? i.cpus : '',
                  memory: i ? formatBytes(i.memoryBytes) : '',
                  disks: i ? i.disks.map((k) => `${k.path.replace('/dev/', '')} ${formatBytes(k.sizeBytes)}${k.serial ? ` ${k.serial}` : ''}`).join(', ') : '',
                  matches: x.matches.length ? x.matches.map((m) => `node ${m} (serial)`).join(', ') : '',
                };
              }),
              ['mac', 'last seen', 'seen', 'vendor', 'product', 'serial', 'cpus', 'memory', 'disks', 'matches'],
            );
          return 0;
        }
        const names = positionals.length ? new Set(selectNodes(d, positionals)) : undefined;
        // The boot column is what the server answers at the next boot (server/boot/decide.ts nextBoot).
        const list = listNodes(d).filter((n) => !names || names.has(n.name)).map((n) => ({ ...n, nextBoot: nextBoot(d, n) }));
        if (values.json) printJson(list);
        else
          printTable(
            list.map((n) => ({ name: n.name, macs: n.macs.join(','), image: n.image, boot: `${n.nextBoot.action} (${n.nextBoot.reason})`, groups: n.groups.join(','), layout: n.layout ? n.layout.digest.slice(7, 19) : '' })),
            ['name', 'macs', 'image', 'boot', 'groups', 'layout'],
          );
        return 0;
      }
      case 'enlist': {
        if (!positionals.length) throw usageError('ferry node enlist needs one MAC or more', USAGE);
        if (!values.name) throw usageError('ferry node enlist needs --name NAME or a pattern such as --name rack1-{serial}', USAGE);
        const macs = positionals.map((m) => normalizeMac(m));
        const c = changes({ layout: values.layout });
        const made = enlist(d, { macs, name: values.name, image: values.image, layoutXml: c.layoutXml, layoutSource: c.layoutSource, groups: values.group, asNew: values.new }, cliActor());
        if (values.json) printJson(made);
        else for (const n of made) process.stdout.write(`enlisted ${n.macs.join(', ')} as node ${n.name}${n.properties['hw.system.serial'] ? ` (serial ${n.properties['hw.system.serial']})` : ''}\n`);
        return 0;
      }
      case 'show': {
        if (positionals.length !== 1) throw usageError('ferry node show needs NAME', USAGE);
        const n = getNode(d, positionals[0]);
        if (values.json) printJson(n);
        else {
          const lines = [
            `name: ${n.name}`,
            `macs: ${n.macs.join(', ')}`,
            `image: ${n.image ?? '-'}`,
            `runs: ${n.running ? `${n.running.image} (${n.running.digest.slice(0, 19)}…), since ${n.running.kind} record ${n.running.deployment} at ${n.running.since.slice(0, 19)}` : '- (no successful install or update recorded)'}`,
            `layout: ${n.layout ? `${n.layout.digest}${n.layout.source ? ` (${n.layout.source})` : ''}` : '-'}`,
            `boot action: ${n.bootAction}; next boot: ${((b) => `${b.action} (${b.reason})`)(nextBoot(d, n))}`,
            `bootloader: ${n.bootloader}  finish: ${n.finish}`,
            `transport: ${n.transport ?? '- (its groups\' default, else http)'}`,
            `power: ${n.power ? `${n.power.driver} ${n.power.address}${n.power.user ? ` user ${n.power.user}` : ''}${n.power.password ? ' (password stored)' : ''}` : '-'}`,
            `groups: ${n.groups.join(', ') || '-'}`,
            `ssh address: ${n.address ?? '-'}`,
            `ssh host keys:${n.hostKeys.length ? '' : ' - (none recorded)'}`,
            ...n.hostKeys.map((k) => `  ${k.fingerprint} (${k.source})`),
            `inputs:${Object.keys(n.inputs).length ? '' : ' -'}`,
            ...Object.entries(n.inputs).map(([k, v]) => `  ${k}=${v}`),
            `properties:${Object.keys(n.properties).some((k) => !k.startsWith('hw.')) ? '' : ' -'}`,
            ...Object.entries(n.properties).filter(([k]) => !k.startsWith('hw.')).map(([k, v]) => `  ${k}=${v}`),
            `hardware:${Object.keys(n.properties).some((k) => k.startsWith('hw.')) ? '' : ' - (reported by the installer at each install: ferry-installer inventory)'}`,
            ...groupHwProperties(n.properties).map(([g, kv]) => `  ${g}: ${kv.map(([k, v]) => `${k}=${v}`).join('  ')}`),
          ];
          if (n.diskMap) lines.push(`disk map: ${Object.entries(n.diskMap).map(([a, b]) => `${a}=${b}`).join(' ')}`);
          process.stdout.write(lines.join('\n') + '\n');
        }
        return 0;
      }
      case 'rm': {
        if (positionals.length !== 1) throw usageError('ferry node rm needs NAME', USAGE);
        removeNode(d, positionals[0], cliActor());
        process.stdout.write(`removed node ${positionals[0]}\n`);
        return 0;
      }
      default:
        throw usageError(`unknown subcommand "node ${sub}"`, USAGE);
    }
  } finally {
    d.close();
  }
}
