/**
 * Customization, planned: a pure function from the image's customization items, the node's
 * inputs and a read-only view of the installed tree to a list of operations (files to write or
 * remove, commands to run inside the target). Applying is installer/customize/apply.ts.
 * Golden-file tests feed an in-memory view and compare the operations.
 */
import { isIP } from 'node:net';
import { FerryError, type Problem } from '../../common/errors.js';
import { networkInputProblems, validHostname } from '../../common/inputs.js';
import type { CustomizationItem } from '../../common/protocol.js';
import { PLACEHOLDER_RE, templateValues as commonTemplateValues } from '../../common/template.js';
import { REGEXP_TIME_LIMIT_MS, replaceBounded } from './regexp.js';

export { REGEXP_TIME_LIMIT_MS } from './regexp.js';

/** What the planner may read of the target. */
export interface TargetView {
  readText(p: string): string | undefined;
  exists(p: string): boolean;
  list(dir: string): string[];
}

export type Op =
  | { op: 'write'; path: string; content: string; encoding?: 'utf8' | 'base64'; mode?: number; uid?: number; gid?: number; why: string }
  | { op: 'mkdir'; path: string; mode: number; uid: number; gid: number; why: string }
  | { op: 'remove'; path: string; why: string }
  | { op: 'symlink'; path: string; target: string; why: string }
  /** Nothing to do, but the operator should know (the installer emits it as a warning event). */
  | { op: 'warn'; path: string; code: string; message: string; why: string }
  | { op: 'chroot'; argv: string[]; env?: Record<string, string>; why: string; script?: { path: string; content: string } };

export interface CustomizeInputs {
  node: { name: string; macs: string[]; properties: Record<string, string> };
  inputs: Record<string, string>;
  /** From the disk plan, when the installer partitioned the disks. */
  fstab?: string;
  mdadmConf?: string;
  /** 32 lower-case hex digits: the new machine-id (random, chosen by the caller). */
  machineId: string;
  /** Rebuild the initramfs when the image can (default true). */
  initramfs?: boolean;
  /** The installer's decision (installer/customize/initramfs.ts); "keep" plans no rebuild. */
  initramfsDecision?: { action: 'keep' | 'rebuild'; reason: string };
  /** How long one regexp item may run (default REGEXP_TIME_LIMIT_MS). */
  regexpLimitMs?: number;
  /** Fresh SSH host keys (installer/customize/hostkeys.ts, made by the caller): written when the image has sshd. */
  sshHostKeys?: { type: string; privateKey: string; publicLine: string }[];
}

/** Whether the image runs an SSH server, so that it gets host keys made at install time. */
export function imageHasSshd(v: TargetView): boolean {
  return v.exists('/usr/sbin/sshd');
}

function inputError(message: string, details: Record<string, unknown>, hint: string): FerryError {
  return new FerryError('FERRY_E_CUSTOMIZE_INPUT', message, { details, hint });
}

/** A view that sees the plan's own earlier writes (a regexp after a file item reads the new text). */
class Overlay implements TargetView {
  private files = new Map<string, string | null>();
  constructor(private base: TargetView) {}
  set(p: string, content: string | null) {
    this.files.set(norm(p), content);
  }
  readText(p: string) {
    const k = norm(p);
    if (this.files.has(k)) return this.files.get(k) ?? undefined;
    return this.base.readText(k);
  }
  exists(p: string) {
    const k = norm(p);
    if (this.files.has(k)) return this.files.get(k) !== null;
    return this.base.exists(k);
  }
  list(dir: string) {
    return this.base.list(dir);
  }
}

function norm(p: string): string {
  return '/' + p.split('/').filter((c) => c && c !== '.').join('/');
}

// ------------------------------------------------------------------------------------------
// hostname and /etc/hosts

// The rules live in common/inputs.ts: the server checks the same inputs when a node is armed.
export { validHostname, validInterfaceName } from '../../common/inputs.js';

export const DEFAULT_HOSTS = `127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
`;

/** /etc/hosts with the 127.0.1.1 line naming this host (Debian's convention), other lines kept. */
export function renderHosts(existing: string | undefined, hostname: string): string {
  const short = hostname.split('.')[0];
  const line = `127.0.1.1\t${hostname === short ? short : `${hostname} ${short}`}`;
  const lines = (existing ?? DEFAULT_HOSTS).split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const i = lines.findIndex((l) => /^127\.0\.1\.1\s/.test(l));
  if (i >= 0) lines[i] = line;
  else {
    const lo = lines.findIndex((l) => /^127\.0\.0\.1\s/.test(l));
    lines.splice(lo >= 0 ? lo + 1 : 0, 0, line);
  }
  return lines.join('\n') + '\n';
}

function planHostname(v: Overlay, c: CustomizeInputs, ops: Op[]): void {
  const name = (c.inputs.hostname || c.node.name).trim();
  if (!validHostname(name)) {
    throw inputError(`hostname "${name}" is not a valid host name`, { hostname: name }, 'use letters, digits and hyphens, dot-separated labels of at most 63 characters (set input "hostname")');
  }
  ops.push({ op: 'write', path: '/etc/hostname', content: name.split('.')[0] + '\n', mode: 0o644, why: 'hostname' });
  const hosts = renderHosts(v.readText('/etc/hosts'), name);
  ops.push({ op: 'write', path: '/etc/hosts', content: hosts, why: 'hostname in /etc/hosts' });
  v.set('/etc/hosts', hosts);
}

// ------------------------------------------------------------------------------------------
// network

export type NetSystem = 'ifupdown' | 'networkd' | 'networkmanager' | 'netplan';

export interface NetSettings {
  mode: 'dhcp' | 'static';
  address?: string;
  prefix?: number;
  gateway?: string;
  dns: string[];
  iface?: string;
  mac?: string;
}

/** Which configuration system the image uses: netplan, then NetworkManager, ifupdown, networkd. */
export function detectNetSystem(v: TargetView): NetSystem | undefined {
  if (v.exists('/usr/sbin/netplan') || v.exists('/usr/bin/netplan')) return 'netplan';
  if (v.exists('/usr/sbin/NetworkManager')) return 'networkmanager';
  if (v.exists('/sbin/ifup') || v.exists('/usr/sbin/ifup')) return 'ifupdown';
  if (v.exists('/lib/systemd/systemd-networkd') || v.exists('/usr/lib/systemd/systemd-networkd')) return 'networkd';
  return undefined;
}

export function networkSettings(inputs: Record<string, string>, macs: string[]): NetSettings {
  const problems: Problem[] = networkInputProblems(inputs);
  const mode = (inputs['network.mode'] || (inputs['network.address'] ? 'static' : 'dhcp')).toLowerCase();
  const dns = (inputs['network.dns'] || '').split(/[\s,;]+/).filter(Boolean);
  const s: NetSettings = { mode: mode as NetSettings['mode'], dns, iface: inputs['network.interface'] || undefined, mac: inputs['network.interface'] ? undefined : macs[0]?.toLowerCase() };
  if (mode === 'static') {
    const a = inputs['network.address'] ?? '';
    const m = /^([^/]+)\/(\d{1,3})$/.exec(a);
    // Validated by networkInputProblems above.
    if (m && isIP(m[1])) {
      s.address = m[1];
      s.prefix = Number(m[2]);
    }
    s.gateway = inputs['network.gateway'] || undefined;
  }
  if (problems.length) {
    throw new FerryError('FERRY_E_CUSTOMIZE_INPUT', 'network inputs are invalid:\n' + problems.map((p) => `  ${p.path}: ${p.message}`).join('\n'), {
      details: { problems }, hint: 'correct the node\'s or deployment\'s network.* inputs (ferry node set … --set network.address=192.0.2.10/24)',
    });
  }
  return s;
}

export function renderIfupdown(s: NetSettings): string {
  const i = s.iface ?? 'eth0';
  const lines = ['# Written by Ferry at install time.', 'source /etc/network/interfaces.d/*', '', 'auto lo', 'iface lo inet loopback', '', `allow-hotplug ${i}`];
  const v6 = s.address && isIP(s.address) === 6;
  if (s.mode === 'dhcp') lines.push(`iface ${i} inet dhcp`);
  else {
    lines.push(`iface ${i} ${v6 ? 'inet6' : 'inet'} static`, `\taddress ${s.address}/${s.prefix}`);
    if (s.gateway) lines.push(`\tgateway ${s.gateway}`);
    if (s.dns.length) lines.push(`\tdns-nameservers ${s.dns.join(' ')}`);
  }
  return lines.join('\n') + '\n';
}

export function renderNetworkd(s: NetSettings): string {
  const match = s.iface ? `Name=${s.iface}` : s.mac ? `MACAddress=${s.mac}` : 'Name=en* eth*';
  const lines = ['# Written by Ferry at install time.', '[Match]', match, '', '[Network]'];
  if (s.mode === 'dhcp') lines.push('DHCP=yes');
  else {
    lines.push(`Address=${s.address}/${s.prefix}`);
    if (s.gateway) lines.push(`Gateway=${s.gateway}`);
  }
  for (const d of s.dns) lines.push(`DNS=${d}`);
  return lines.join('\n') + '\n';
}

export function renderNmConnection(s: NetSettings): string {
  const v6 = s.address && isIP(s.address) === 6;
  const lines = ['# Written by Ferry at install time.', '[connection]', 'id=ferry', 'uuid=6f1c2f0e-9a55-4c8e-8d1b-0000feed0001', 'type=ethernet', 'autoconnect=true'];
  if (s.iface) lines.push(`interface-name=${s.iface}`);
  lines.push('', '[ethernet]');
  if (!s.iface && s.mac) lines.push(`mac-address=${s.mac.toUpperCase()}`);
  const dns = (want6: boolean) => s.dns.filter((d) => (isIP(d) === 6) === want6);
  const section = (fam: 'ipv4' | 'ipv6') => {
    const is6 = fam === 'ipv6';
    lines.push('', `[${fam}]`);
    if (s.mode === 'dhcp') lines.push('method=auto');
    else if (!!v6 === is6) {
      lines.push('method=manual', `address1=${s.address}/${s.prefix}${s.gateway ? ',' + s.gateway : ''}`);
    } else lines.push(is6 ? 'method=auto' : 'method=disabled');
    if (dns(is6).length) lines.push(`dns=${dns(is6).join(';')};`);
  };
  section('ipv4');
  section('ipv6');
  return lines.join('\n') + '\n';
}

export function renderNetplan(s: NetSettings): string {
  const lines = ['# Written by Ferry at install time.', 'network:', '  version: 2', '  ethernets:', '    ferry0:'];
  if (s.iface) lines.push('      match:', `        name: ${s.iface}`);
  else if (s.mac) lines.push('      match:', `        macaddress: "${s.mac}"`);
  else lines.push('      match:', '        name: "e*"');
  if (s.mode === 'dhcp') lines.push('      dhcp4: true');
  else {
    lines.push('      addresses:', `        - ${s.address}/${s.prefix}`);
    if (s.gateway) lines.push('      routes:', '        - to: default', `          via: ${s.gateway}`);
  }
  if (s.dns.length) lines.push('      nameservers:', '        addresses:', ...s.dns.map((d) => `          - ${d}`));
  return lines.join('\n') + '\n';
}

function planNetwork(item: Extract<CustomizationItem, { kind: 'network' }>, v: Overlay, c: CustomizeInputs, ops: Op[]): void {
  const s = networkSettings(c.inputs, c.node.macs);
  const system = item.system && item.system !== 'auto' ? item.system : detectNetSystem(v);
  if (!system) {
    throw new FerryError('FERRY_E_CUSTOMIZE_NO_NETWORK_SYSTEM', 'the image has no network configuration system Ferry knows (netplan, NetworkManager, ifupdown, systemd-networkd)', {
      hint: 'install one of them in the image, or name one with the item\'s "system"',
    });
  }
  switch (system) {
    case 'ifupdown':
      ops.push({ op: 'write', path: '/etc/network/interfaces', content: renderIfupdown(s), mode: 0o644, why: 'network (ifupdown)' });
      break;
    case 'networkd':
      ops.push({ op: 'write', path: '/etc/systemd/network/60-ferry.network', content: renderNetworkd(s), mode: 0o644, why: 'network (systemd-networkd)' });
      ops.push({ op: 'symlink', path: '/etc/systemd/system/multi-user.target.wants/systemd-networkd.service', target: '/lib/systemd/system/systemd-networkd.service', why: 'enable systemd-networkd' });
      break;
    case 'networkmanager':
      ops.push({ op: 'write', path: '/etc/NetworkManager/system-connections/ferry.nmconnection', content: renderNmConnection(s), mode: 0o600, uid: 0, gid: 0, why: 'network (NetworkManager)' });
      break;
    case 'netplan':
      ops.push({ op: 'write', path: '/etc/netplan/60-ferry.yaml', content: renderNetplan(s), mode: 0o600, uid: 0, gid: 0, why: 'network (netplan)' });
      break;
  }
  if (s.mode === 'static' && s.dns.length && (system === 'ifupdown' || system === 'networkd')) {
    // Without resolvconf/resolved in the image, dns-nameservers/DNS= alone reach no resolver.
    const rc = v.readText('/etc/resolv.conf');
    if (rc === undefined || !/^# (Generated by|This is \/run\/systemd)/m.test(rc)) {
      ops.push({ op: 'write', path: '/etc/resolv.conf', content: s.dns.map((d) => `nameserver ${d}`).join('\n') + '\n', mode: 0o644, why: 'DNS servers' });
    }
  }
}

// ------------------------------------------------------------------------------------------
// users: authorized keys

export function passwdEntry(passwd: string | undefined, user: string): { uid: number; gid: number; home: string } | undefined {
  for (const line of (passwd ?? '').split('\n')) {
    const f = line.split(':');
    if (f[0] === user && f.length >= 7) return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] };
  }
  return undefined;
}

function planAuthorizedKeys(item: Extract<CustomizationItem, { kind: 'authorized-keys' }>, v: Overlay, c: CustomizeInputs, ops: Op[]): void {
  const pw = passwdEntry(v.readText('/etc/passwd'), item.user);
  if (!pw && item.missingUser === 'warn') {
    ops.push({
      op: 'warn', path: '/etc/passwd', code: 'FERRY_W_AUTHORIZE_NO_USER', why: `authorized keys of ${item.user}`,
      message: `the image has no user "${item.user}" in /etc/passwd: Ferry's SSH key is not authorized on this node (ferry exec, push and update will not reach it as ${item.user})`,
    });
    return;
  }
  if (!pw) {
    throw inputError(`user "${item.user}" does not exist in the image (/etc/passwd)`, { user: item.user }, 'create the user in the image, or name an existing one in the customization item');
  }
  const keys = [...(item.keys ?? []), ...(c.inputs['ssh.authorized_keys'] ?? '').split('\n')].map((k) => k.trim()).filter(Boolean);
  for (const k of keys) {
    if (!/^(ssh-|ecdsa-|sk-|[a-z0-9-]+(,[^ ]+)* ssh-)/.test(k)) throw inputError(`"${k.slice(0, 40)}…" is not an SSH public key line`, { key: k }, 'give lines as in id_ed25519.pub ("ssh-ed25519 AAAA… comment")');
  }
  const dir = `${pw.home}/.ssh`;
  const file = `${dir}/authorized_keys`;
  const existing = (v.readText(file) ?? '').split('\n').filter((l) => l.trim());
  const merged = [...existing, ...keys.filter((k) => !existing.includes(k))];
  ops.push({ op: 'mkdir', path: dir, mode: 0o700, uid: pw.uid, gid: pw.gid, why: `~${item.user}/.ssh` });
  ops.push({ op: 'write', path: file, content: merged.join('\n') + '\n', mode: 0o600, uid: pw.uid, gid: pw.gid, why: `authorized keys of ${item.user}` });
}

// ------------------------------------------------------------------------------------------
// templates

/** Values a template may use: inputs by name, node.name, node.mac, node.<property> (common/template.ts). */
export function templateValues(c: CustomizeInputs): Record<string, string> {
  return commonTemplateValues(c.node, c.inputs);
}

export function renderTemplate(template: string, values: Record<string, string>, where: string): string {
  const missing = new Set<string>();
  const out = template.replace(PLACEHOLDER_RE, (_m, name: string) => {
    // Own values only: `in` follows the prototype chain ({{ constructor }} rendered Object's source).
    if (!Object.hasOwn(values, name)) {
      missing.add(name);
      return '';
    }
    return values[name];
  });
  if (missing.size) {
    throw inputError(`template for ${where} uses values that are not set: ${[...missing].join(', ')}`, { path: where, missing: [...missing] }, 'set them as inputs of the node or the deployment');
  }
  return out;
}

// ------------------------------------------------------------------------------------------

function checkPath(p: string, kind: string): string {
  if (!p.startsWith('/')) throw inputError(`${kind} path "${p}" is not absolute`, { path: p }, 'give paths inside the image as absolute paths (/etc/motd)');
  return norm(p);
}

export function scriptEnv(c: CustomizeInputs): Record<string, string> {
  const env: Record<string, string> = { FERRY_NODE: c.node.name, FERRY_MAC: c.node.macs[0] ?? '', PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive' };
  for (const [k, v] of Object.entries(c.inputs)) env['FERRY_INPUT_' + k.toUpperCase().replace(/[^A-Z0-9]/g, '_')] = v;
  return env;
}

/**
 * Everything customization will do, in order. Async only because regexp items run in a worker
 * (regexp.ts); it reads nothing but `view` and writes nothing.
 */
export async function planCustomization(items: CustomizationItem[], c: CustomizeInputs, view: TargetView): Promise<Op[]> {
  const v = new Overlay(view);
  const ops: Op[] = [];
  // What every install does: the machine must not keep the master's identity or disk layout.
  if (c.fstab !== undefined) ops.push({ op: 'write', path: '/etc/fstab', content: c.fstab, mode: 0o644, why: 'fstab from the disk layout' });
  if (c.mdadmConf) ops.push({ op: 'write', path: '/etc/mdadm/mdadm.conf', content: c.mdadmConf, mode: 0o644, why: 'RAID arrays from the disk layout' });
  if (!/^[0-9a-f]{32}$/.test(c.machineId)) throw new FerryError('FERRY_E_INTERNAL', `machine id "${c.machineId}" is not 32 hex digits`);
  ops.push({ op: 'write', path: '/etc/machine-id', content: c.machineId + '\n', mode: 0o444, why: 'fresh machine-id' });
  const dbusId = '/var/lib/dbus/machine-id';
  if (v.exists(dbusId) && v.readText(dbusId) !== undefined) ops.push({ op: 'remove', path: dbusId, why: 'D-Bus takes /etc/machine-id' });
  const hostKeys = v.list('/etc/ssh').filter((f) => /^ssh_host_.*_key(\.pub)?$/.test(f));
  const freshKeys = c.sshHostKeys?.length && imageHasSshd(v) ? c.sshHostKeys : undefined;
  for (const k of hostKeys) ops.push({ op: 'remove', path: `/etc/ssh/${k}`, why: freshKeys ? "the master's SSH host keys go: fresh ones are made now" : 'SSH host keys are made anew on first boot' });
  if (freshKeys) {
    // Made at install time and reported to the server, so Ferry knows them before the first boot.
    for (const k of freshKeys) {
      if (!/^[a-z0-9]+$/.test(k.type)) throw new FerryError('FERRY_E_INTERNAL', `SSH host key type "${k.type}" is not a plain name`);
      ops.push({ op: 'write', path: `/etc/ssh/ssh_host_${k.type}_key`, content: k.privateKey, mode: 0o600, uid: 0, gid: 0, why: `fresh SSH host key (${k.type})` });
      ops.push({ op: 'write', path: `/etc/ssh/ssh_host_${k.type}_key.pub`, content: k.publicLine + '\n', mode: 0o644, uid: 0, gid: 0, why: `fresh SSH host key (${k.type}), public` });
    }
  } else if (hostKeys.length && v.exists('/usr/bin/ssh-keygen') && (v.exists('/lib/systemd/systemd') || v.exists('/usr/lib/systemd/systemd'))) {
    // Debian makes host keys only when the package is installed; a unit makes them on first boot.
    ops.push({
      op: 'write', path: '/etc/systemd/system/ferry-ssh-hostkeys.service', mode: 0o644, why: 'make SSH host keys on first boot',
      content: '[Unit]\nDescription=Make SSH host keys (Ferry)\nBefore=ssh.service sshd.service\nConditionPathExists=!/etc/ssh/ssh_host_ed25519_key\n\n[Service]\nType=oneshot\nExecStart=/usr/bin/ssh-keygen -A\n\n[Install]\nWantedBy=multi-user.target\n',
    });
    ops.push({ op: 'symlink', path: '/etc/systemd/system/multi-user.target.wants/ferry-ssh-hostkeys.service', target: '/etc/systemd/system/ferry-ssh-hostkeys.service', why: 'enable first-boot SSH host keys' });
  }
  if (!items.some((i) => i.kind === 'hostname')) planHostname(v, c, ops);
  if (!items.some((i) => i.kind === 'network') && Object.keys(c.inputs).some((k) => k.startsWith('network.'))) planNetwork({ kind: 'network' }, v, c, ops);
  let scripts = 0;
  for (const item of items) {
    switch (item.kind) {
      case 'hostname':
        planHostname(v, c, ops);
        break;
      case 'network':
        planNetwork(item, v, c, ops);
        break;
      case 'authorized-keys':
        planAuthorizedKeys(item, v, c, ops);
        break;
      case 'ssh-authorize-ferry':
        // The server replaces it with an authorized-keys item holding its key (server/ssh/authorize.ts).
        throw inputError('the ssh-authorize-ferry item reached the installer unexpanded', { item }, 'install through a Ferry server of the same version, which puts its public key in');
      case 'file': {
        const p = checkPath(item.path, 'file');
        const content = item.encoding === 'base64' ? Buffer.from(item.content, 'base64').toString('base64') : item.content;
        ops.push({ op: 'write', path: p, content, encoding: item.encoding, mode: item.mode, uid: item.uid, gid: item.gid, why: `file ${p}` });
        v.set(p, item.encoding === 'base64' ? Buffer.from(item.content, 'base64').toString('utf8') : item.content);
        break;
      }
      case 'regexp': {
        const p = checkPath(item.path, 'regexp');
        const text = v.readText(p);
        if (text === undefined) throw inputError(`regexp replacement: "${p}" does not exist in the image`, { path: p }, 'correct the path, or use a "file" item to create it');
        let re: RegExp;
        try {
          re = new RegExp(item.pattern, item.flags ?? 'gm');
        } catch (e) {
          throw inputError(`regexp replacement in ${p}: bad pattern /${item.pattern}/: ${(e as Error).message}`, { path: p, pattern: item.pattern }, 'write a JavaScript regular expression');
        }
        const replacement = renderTemplate(item.replacement, templateValues(c), p);
        const out = await replaceBounded(text, re, replacement, p, c.regexpLimitMs ?? REGEXP_TIME_LIMIT_MS);
        ops.push({ op: 'write', path: p, content: out, why: `regexp /${item.pattern}/ in ${p}` });
        v.set(p, out);
        break;
      }
      case 'template': {
        const p = checkPath(item.path, 'template');
        const out = renderTemplate(item.template, templateValues(c), p);
        ops.push({ op: 'write', path: p, content: out, mode: item.mode, why: `template ${p}` });
        v.set(p, out);
        break;
      }
      case 'script': {
        const n = ++scripts;
        const path = `/tmp/ferry-customize-${n}`;
        ops.push({ op: 'chroot', argv: [item.interpreter ?? '/bin/sh', path], env: scriptEnv(c), script: { path, content: item.script }, why: `script ${n}` });
        break;
      }
      default:
        throw inputError(`unknown customization kind "${(item as { kind: string }).kind}"`, { item }, 'use hostname, network, file, regexp, template, authorized-keys, ssh-authorize-ferry or script');
    }
  }
  if (c.initramfs !== false && c.initramfsDecision?.action !== 'keep') {
    const why = c.initramfsDecision ? `rebuild the initramfs for this machine (${c.initramfsDecision.reason.replace(/^rebuild: /, '')})` : 'rebuild the initramfs for this machine';
    if (v.exists('/usr/sbin/update-initramfs')) {
      ops.push({ op: 'chroot', argv: ['/usr/sbin/update-initramfs', '-u', '-k', 'all'], env: scriptEnv(c), why });
    } else if (v.exists('/usr/bin/dracut') || v.exists('/usr/sbin/dracut')) {
      ops.push({ op: 'chroot', argv: [v.exists('/usr/bin/dracut') ? '/usr/bin/dracut' : '/usr/sbin/dracut', '--force', '--regenerate-all'], env: scriptEnv(c), why });
    }
  }
  return ops;
}
