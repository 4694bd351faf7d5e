/**
 * Offline installs keep their record. A medium install has no server to send events to, so the
 * finish stage writes them, with the result, into the installed system (RECORD_FILE); and when
 * the medium names a server and carries its token (`ferry media build --server URL`), it also
 * writes a oneshot systemd unit and a small script that post the record to the server at first
 * boot, retrying every minute until the server answers, and then remove themselves and the
 * token. So `ferry history` shows media installs beside network ones.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { clearRecordSlots, fdReader, readRecordArea, writeRecordToMedium } from '../common/medium-records.js';
import type { InstallResult } from '../common/protocol.js';
import { ServerClient } from './client.js';
import type { Backoff } from './retry.js';
import { MEDIA_RECORD_ROUTE, RECORD_FILE, RECORD_FORMAT, RECORD_MAX_EVENTS, REPORT_HEADER_FILE, REPORT_SCRIPT, REPORT_UNIT, REPORT_UNIT_LINK, REPORT_URL_FILE, type InstallRecord, type MediumManifest } from '../common/medium.js';
import type { ProgressEvent } from '../common/progress.js';
import type { TargetRoot } from '../layers/target.js';

/** The events an install keeps for its record: every one but progress and heartbeats, then the newest progress events, at most `max`, in order. */
export function recordEvents(events: ProgressEvent[], max = RECORD_MAX_EVENTS): InstallRecord['events'] {
  const keep = (e: ProgressEvent) => ({ ts: e.ts, phase: e.phase, state: e.state, ...(e.object ? { object: e.object } : {}), ...(e.message ? { message: e.message.slice(0, 4096) } : {}), ...(e.code ? { code: e.code } : {}) });
  const isMain = (e: ProgressEvent) => e.state !== 'progress' && e.state !== 'heartbeat';
  const main = events.filter(isMain).length;
  let progressRoom = Math.max(0, max - main);
  const chosen = new Set<ProgressEvent>();
  for (let i = events.length - 1; i >= 0 && progressRoom > 0; i--) {
    if (events[i].state === 'progress') {
      chosen.add(events[i]);
      progressRoom--;
    }
  }
  return events.filter((e) => isMain(e) || chosen.has(e)).slice(0, max).map(keep);
}

export function installRecord(m: MediumManifest, events: ProgressEvent[], startedAt: string, result?: InstallResult): InstallRecord {
  return {
    format: RECORD_FORMAT,
    id: randomUUID(),
    medium: m.label,
    node: m.node.name,
    image: { name: m.image.name, version: m.image.version, digest: m.image.digest },
    layout: m.layout,
    inputs: m.inputs,
    status: result?.status ?? 'success',
    ...(result?.error ? { error: { code: result.error.code, message: result.error.message.slice(0, 8192), ...(result.error.phase ? { phase: result.error.phase } : {}) } } : {}),
    startedAt,
    endedAt: new Date().toISOString(),
    events: recordEvents(events),
  };
}

/** Can the medium's device be written? Never a CD; never a device the kernel marks read-only. */
export function mediumWritable(dev: string): { ok: true } | { ok: false; why: string; cd?: boolean } {
  const name = basename(dev);
  if (/^sr\d+$/.test(name)) return { ok: false, why: `${dev} is a CD, which is never written`, cd: true };
  const sys = `/sys/class/block/${name}`;
  if (existsSync(sys)) {
    const read = (f: string) => {
      try {
        return readFileSync(`${sys}/${f}`, 'utf8').trim();
      } catch {
        return undefined;
      }
    };
    if (read('device/type') === '5') return { ok: false, why: `${dev} is a CD drive, which is never written`, cd: true };
    if (read('ro') === '1') return { ok: false, why: `${dev} is read-only (a write-protected stick, or a read-only virtual disk)` };
  }
  return { ok: true };
}

/**
 * A medium install that failed (or was aborted) keeps its record too: the console always shows
 * the result; with a server and token, the record is posted at once (a short retry: the network
 * may just have come up); if that is not possible or fails, it is written into the records area
 * of the medium when the medium is writable (a stick; never a CD), for `ferry media records DEV`
 * or the medium's next install that reaches the server. Returns the lines said on the console.
 */
export async function keepFailedRecord(m: MediumManifest, events: ProgressEvent[], startedAt: string, result: InstallResult, o: { mediumDevice?: string; backoff?: Backoff } = {}): Promise<string[]> {
  const rec = installRecord(m, events, startedAt, result);
  const lines: string[] = [];
  if (m.server && m.token) {
    try {
      const r = await new ServerClient({ server: m.server, token: m.token }).call<{ deployment: number }>('POST', MEDIA_RECORD_ROUTE, rec, 'the install record', o.backoff ?? { baseMs: 500, maxMs: 5_000, giveUpAfterMs: 20_000 });
      lines.push(`ferry: the ${rec.status} install's record was posted to ${m.server} (deployment ${r.deployment}; ferry history ${m.node.name})`);
      return lines;
    } catch (e) {
      lines.push(`ferry: could not post the install record to ${m.server}: ${(e as Error).message}`);
    }
  }
  if (!o.mediumDevice) {
    lines.push('ferry: the install record is on this console only (no server was reached and the medium\'s device is not known)');
    return lines;
  }
  const w = mediumWritable(o.mediumDevice);
  if (!w.ok) {
    lines.push(`ferry: the install record is on this console only: ${w.why}${m.server ? '' : ', and the medium names no server'}`);
    return lines;
  }
  const wr = writeRecordToMedium(o.mediumDevice, rec);
  if ('refused' in wr) lines.push(`ferry: the install record is on this console only: ${wr.refused}`);
  else lines.push(`ferry: the install record was written onto the medium ${o.mediumDevice} (records slot ${wr.slot + 1}); \`ferry media records ${o.mediumDevice}\` on the server's host brings it to ferry history`);
  return lines;
}

/** The first-boot report: POST the record with the medium's token; on success remove the unit, the script and the token. */
export function reportScript(): string {
  return `#!/bin/bash
# Ferry: post this machine's offline install record (installed from a restore medium) to the
# server named at medium build, once. Run by ferry-report-install.service at boot until it
# succeeds; FERRY_ROOT runs it against an installed tree from outside. curl or wget when the
# image has one; else openssl s_client for an https:// server, bash's own /dev/tcp for an
# http:// one (FERRY_REPORT_CLIENT=curl|wget|openssl|bash chooses).
set -u
root=\${FERRY_ROOT:-}
rec="$root/${RECORD_FILE}"
hdr="$root/${REPORT_HEADER_FILE}"
url="$(cat "$root/${REPORT_URL_FILE}")${MEDIA_RECORD_ROUTE}"
client=\${FERRY_REPORT_CLIENT:-}
if [ -z "$client" ]; then
  if command -v curl >/dev/null 2>&1; then client=curl
  elif command -v wget >/dev/null 2>&1; then client=wget
  else case "$url" in https://*) client=openssl ;; *) client=bash ;; esac
  fi
fi
# An https:// server without curl or wget: openssl s_client (package openssl), verifying the
# server's certificate and name against the system's CAs (SSL_CERT_FILE names another bundle).
post_openssl() {
  command -v openssl >/dev/null 2>&1 || { echo "ferry-report-install: no curl, wget or openssl for $url" >&2; return 1; }
  local rest=\${url#https://} hostport path host port status verify answer
  hostport=\${rest%%/*}
  path=/\${rest#*/}
  host=\${hostport%:*}
  port=\${hostport##*:}
  [ "$port" = "$hostport" ] && port=443
  case "$host" in *[!0-9.]*) verify=(-verify_hostname "$host") ;; *) verify=(-verify_ip "$host") ;; esac
  answer=$({ printf 'POST %s HTTP/1.1\\r\\nHost: %s\\r\\n%s\\r\\nContent-Type: application/json\\r\\nContent-Length: %s\\r\\nConnection: close\\r\\n\\r\\n' "$path" "$hostport" "$(cat "$hdr")" "$(wc -c < "$rec")"; cat "$rec"; } |
    timeout 60 openssl s_client -quiet -connect "$host:$port" -servername "$host" -verify_return_error "\${verify[@]}" \${SSL_CERT_FILE:+-CAfile "$SSL_CERT_FILE"} 2>/dev/null)
  status=\${answer%%$'\\r'*}
  printf '%s\\n' "\${answer#*$'\\r\\n\\r\\n'}"
  case "$status" in "HTTP/1."?" 200 "*) return 0 ;; *) echo "ferry-report-install: $url answered: \${status:-nothing (a TLS or certificate failure?)}" >&2; return 1 ;; esac
}
# Each post_* prints the server's answer body and returns 0 on HTTP 200.
post_bash() {
  case "$url" in http://*) ;; *) echo "ferry-report-install: no curl or wget for $url" >&2; return 1 ;; esac
  local rest=\${url#http://} hostport path host port status
  hostport=\${rest%%/*}
  path=/\${rest#*/}
  host=\${hostport%:*}
  port=\${hostport##*:}
  [ "$port" = "$hostport" ] && port=80
  exec 3<>"/dev/tcp/$host/$port" || return 1
  printf 'POST %s HTTP/1.1\\r\\nHost: %s\\r\\n%s\\r\\nContent-Type: application/json\\r\\nContent-Length: %s\\r\\nConnection: close\\r\\n\\r\\n' "$path" "$hostport" "$(cat "$hdr")" "$(wc -c < "$rec")" >&3
  cat "$rec" >&3
  IFS= read -r -t 60 status <&3 || status=
  # Connection: close: the rest of the answer ends when the server closes.
  head -c 65536 <&3
  exec 3<&-
  case "$status" in "HTTP/1."?" 200 "*) return 0 ;; *) echo "ferry-report-install: $url answered: \${status%$'\\r'}" >&2; return 1 ;; esac
}
post_curl() {
  # -H @file: the token never appears on a command line.
  local out code
  out=$(curl -sS --max-time 60 -H @"$hdr" -H 'content-type: application/json' --data-binary @"$rec" -w '\\n%{http_code}' "$url") || return 1
  code=\${out##*$'\\n'}
  printf '%s\\n' "\${out%$'\\n'*}"
  [ "$code" = 200 ] || { echo "ferry-report-install: $url answered HTTP $code" >&2; return 1; }
}
post_wget() {
  wget -q -T 60 --content-on-error --header="$(cat "$hdr")" --header='content-type: application/json' --post-file="$rec" -O - "$url"
}
done_report() {
  rm -f "$root/${REPORT_UNIT_LINK}" "$root/${REPORT_UNIT}" "$hdr" "$root/${REPORT_URL_FILE}" "$root/${REPORT_SCRIPT}"
}
case "$client" in
  curl) answer=$(post_curl) ;;
  wget) answer=$(post_wget) ;;
  openssl) answer=$(post_openssl) ;;
  *) answer=$(post_bash) ;;
esac
rc=$?
if [ "$rc" = 0 ]; then
  echo "ferry-report-install: the install record was posted to $url"
  done_report
  exit 0
fi
case "$answer" in
  *FERRY_E_MEDIUM_REVOKED*)
    # Final: a revoked medium's records are refused for good; the record stays in the installed system.
    echo "ferry-report-install: the medium's token was revoked (FERRY_E_MEDIUM_REVOKED); the record stays in /${RECORD_FILE}; not retrying" >&2
    done_report
    exit 0 ;;
esac
exit 1
`;
}

export function reportUnit(): string {
  return `[Unit]
Description=Ferry: report the offline install to the server
Wants=network-online.target
After=network-online.target
ConditionPathExists=/${REPORT_HEADER_FILE}
StartLimitIntervalSec=0

[Service]
Type=oneshot
ExecStart=/${REPORT_SCRIPT}
Restart=on-failure
RestartSec=60

[Install]
WantedBy=multi-user.target
`;
}

/** Write the record (and, with a server and token, the first-boot report) into the installed system. */
export function writeOfflineRecord(t: TargetRoot, m: MediumManifest, events: ProgressEvent[], startedAt: string): { record: string; report: boolean } {
  const rec = installRecord(m, events, startedAt);
  // 0600: the inputs may hold what only root should read.
  const record = t.writeFile(RECORD_FILE, JSON.stringify(rec, null, 2) + '\n', { mode: 0o600 });
  if (!m.server || !m.token) return { record, report: false };
  t.writeFile(REPORT_HEADER_FILE, `Authorization: Bearer ${m.token}\n`, { mode: 0o600 });
  t.writeFile(REPORT_URL_FILE, m.server.replace(/\/+$/, '') + '\n', { mode: 0o600 });
  t.writeFile(REPORT_SCRIPT, reportScript(), { mode: 0o755 });
  t.writeFile(REPORT_UNIT, reportUnit(), { mode: 0o644 });
  t.mkdirs('etc/systemd/system/multi-user.target.wants');
  t.remove(REPORT_UNIT_LINK);
  t.symlink('../ferry-report-install.service', REPORT_UNIT_LINK);
  return { record, report: true };
}

/**
 * The first network contact of a medium that kept records (failed installs that could not reach
 * the server): at its next install with a server and token, every record in its records area is
 * posted (stored once each by the server, so a repeat is harmless), and the slots posted are
 * blanked when the medium is writable. Never throws: the install goes on whatever happens here.
 */
export async function postKeptRecords(m: MediumManifest, device: string | undefined, o: { backoff?: Backoff } = {}): Promise<string | undefined> {
  if (!m.server || !m.token || !device) return undefined;
  let fd: number;
  try {
    fd = openSync(device, 'r');
  } catch {
    return undefined;
  }
  let area;
  try {
    area = readRecordArea(fdReader(fd));
  } finally {
    closeSync(fd);
  }
  if (!area || area.records.length === 0) return undefined;
  const client = new ServerClient({ server: m.server, token: m.token });
  const posted: number[] = [];
  let failure = '';
  for (const r of area.records) {
    const rec = !r.record.layout.xml && r.record.layout.digest === m.layout.digest ? { ...r.record, layout: m.layout } : r.record;
    try {
      await client.call('POST', MEDIA_RECORD_ROUTE, rec, 'a record the medium kept', o.backoff ?? { baseMs: 500, maxMs: 2_000, giveUpAfterMs: 5_000 });
      posted.push(r.slot);
    } catch (e) {
      failure = (e as Error).message;
      break;
    }
  }
  const cleared = posted.length && mediumWritable(device).ok ? clearRecordSlots(device, area.offset, posted) : false;
  if (!posted.length) return `the medium keeps ${area.records.length} install record(s); posting them to ${m.server} failed: ${failure}`;
  return `posted ${posted.length} of the ${area.records.length} install record(s) the medium kept to ${m.server}${cleared ? ' and cleared them from the medium' : ''}${failure ? `; the rest failed: ${failure}` : ''}`;
}
