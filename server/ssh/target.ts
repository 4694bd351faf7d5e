/**
 * Where an SSH connection goes: `[USER@]HOST[:PORT]` (`--from` of `ferry image capture`) and a
 * node's address `HOST[:PORT]` (`ferry node set N --address A`). IPv6 literals go in brackets
 * (`[fd00::5]:2222`). Pure: the one parser of both.
 */
import { FerryError } from '../../common/errors.js';

export interface SshTarget {
  user: string;
  host: string;
  port: number;
}

const HOST_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*\.?|\d{1,3}(?:\.\d{1,3}){3})$/;
const USER_RE = /^[a-z_][a-z0-9_.-]{0,31}\$?$/i;

function bad(what: string, value: string, why: string): FerryError {
  return new FerryError('FERRY_E_SSH_BAD_TARGET', `${what} "${value}" is not valid: ${why}`, {
    details: { what, value },
    hint: `write ${what === 'address' ? 'HOST[:PORT]' : '[USER@]HOST[:PORT]'}: a host name, an IPv4 address or an IPv6 address in brackets, an optional port 1-65535`,
  });
}

/** Parse `[USER@]HOST[:PORT]`; `what` names the input in errors (`--from`, `address`). */
export function parseTarget(text: string, what = '--from', o: { allowUser?: boolean; defaultUser?: string } = {}): SshTarget {
  let rest = text;
  let user = o.defaultUser ?? 'root';
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    if (o.allowUser === false) throw bad(what, text, 'an address has no user part');
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (!USER_RE.test(user)) throw bad(what, text, `"${user}" is not a user name`);
  }
  let host: string;
  let portText: string | undefined;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) throw bad(what, text, 'an IPv6 address lacks its closing "]"');
    host = rest.slice(1, close);
    if (!/^[0-9A-Fa-f:.]+$/.test(host) || !host.includes(':')) throw bad(what, text, `"${host}" is not an IPv6 address`);
    const after = rest.slice(close + 1);
    if (after && !after.startsWith(':')) throw bad(what, text, 'text after "]" must be ":PORT"');
    portText = after ? after.slice(1) : undefined;
  } else {
    const parts = rest.split(':');
    if (parts.length > 2) throw bad(what, text, 'IPv6 addresses go in brackets: [ADDRESS]:PORT');
    host = parts[0];
    portText = parts[1];
    if (!HOST_RE.test(host)) throw bad(what, text, `"${host}" is not a host name or IPv4 address`);
  }
  let port = 22;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) throw bad(what, text, `port "${portText}" is not 1-65535`);
    port = Number(portText);
  }
  return { user, host, port };
}

/** `HOST:PORT` as written back (brackets for IPv6), the key host keys are recorded under. */
export function formatHostPort(t: { host: string; port: number }): string {
  return `${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`;
}

/**
 * Quote one word for the remote POSIX shell that sshd runs a command with. Commands Ferry builds
 * itself (the capture's tar) are argv arrays, quoted word by word, so no name becomes syntax.
 */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export function shellCommand(argv: string[]): string {
  return argv.map(shellQuote).join(' ');
}

/** A node's address as stored: HOST, or HOST:PORT when the port is not 22. */
export function formatAddress(t: { host: string; port: number }): string {
  const h = t.host.includes(':') ? `[${t.host}]` : t.host;
  return t.port === 22 ? h : `${h}:${t.port}`;
}
