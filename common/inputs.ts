/**
 * Node inputs that land in the installed system's configuration files (hostname, network.*):
 * what each may be. The one home of these rules, shared because both sides check them: the
 * server when a node is armed (layout/preflight.ts armChecks), the installer when it plans the
 * customization (installer/customize/plan.ts), so an input refused on the node is refused first
 * at arm time.
 */
import { isIP } from 'node:net';
import type { Problem } from './errors.js';

const HOST_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

/** RFC 1123 host names: dot-separated labels of letters, digits and hyphens. */
export function validHostname(h: string): boolean {
  return h.length <= 253 && h.split('.').every((l) => HOST_LABEL.test(l));
}

/**
 * What the kernel accepts as an interface name (dev_valid_name): 1 to 15 bytes, not "." or "..",
 * no "/", ":" or whitespace. Control characters are refused too: the name is written verbatim
 * into ifupdown, networkd, netplan and NetworkManager files, where a newline adds a line (an `up`
 * command run as root at every boot), and so are the comment, quote and section characters of
 * those formats.
 */
export function validInterfaceName(name: string): boolean {
  return Buffer.byteLength(name) >= 1 && Buffer.byteLength(name) <= 15 && name !== '.' && name !== '..' && !/[\s/:\u0000-\u001f\u007f"'\\#;=\[\]]/.test(name);
}

function bad(path: string, message: string): Problem {
  return { severity: 'error', code: 'FERRY_E_CUSTOMIZE_INPUT', path, message };
}

/** Problems of the network.* inputs (none when no network input is set). */
export function networkInputProblems(inputs: Record<string, string>): Problem[] {
  const problems: Problem[] = [];
  const get = (k: string) => (Object.hasOwn(inputs, k) ? inputs[k] : undefined);
  const mode = (get('network.mode') || (get('network.address') ? 'static' : 'dhcp')).toLowerCase();
  if (mode !== 'dhcp' && mode !== 'static') problems.push(bad('inputs.network.mode', `"${mode}" is neither dhcp nor static`));
  for (const d of (get('network.dns') || '').split(/[\s,;]+/).filter(Boolean)) if (!isIP(d)) problems.push(bad('inputs.network.dns', `"${d}" is not an IP address`));
  const iface = get('network.interface');
  if (iface && !validInterfaceName(iface)) {
    problems.push(bad('inputs.network.interface', `${JSON.stringify(iface)} is not a Linux interface name (1 to 15 characters, no whitespace, "/" or ":", not "." or "..")`));
  }
  if (mode === 'static') {
    const a = get('network.address') ?? '';
    const m = /^([^/]+)\/(\d{1,3})$/.exec(a);
    if (!m || !isIP(m[1]) || Number(m[2]) > (isIP(m[1]) === 6 ? 128 : 32)) problems.push(bad('inputs.network.address', `"${a}" is not an address with a prefix length (192.0.2.10/24)`));
    const g = get('network.gateway');
    if (g && !isIP(g)) problems.push(bad('inputs.network.gateway', `"${g}" is not an IP address`));
  }
  return problems;
}

/** Problems of the inputs that reach files: the hostname (input, else the node's name) and network.*. */
export function nodeInputProblems(inputs: Record<string, string>, nodeName: string): Problem[] {
  const out: Problem[] = [];
  const name = ((Object.hasOwn(inputs, 'hostname') ? inputs.hostname : '') || nodeName).trim();
  if (!validHostname(name)) {
    out.push({ ...bad('inputs.hostname', `hostname ${JSON.stringify(name)} is not a valid host name`), hint: 'use letters, digits and hyphens, dot-separated labels of at most 63 characters (set input "hostname")' });
  }
  if (Object.keys(inputs).some((k) => k.startsWith('network.'))) {
    out.push(...networkInputProblems(inputs).map((p) => ({ ...p, hint: 'correct the node\'s or deployment\'s network.* inputs (ferry node set … --set network.address=192.0.2.10/24)' })));
  }
  return out;
}
