/**
 * Offline installs keep their record. A medium install has no server to send events to, so the
 * finish stage writes them, with the result, into the installed system (RECORD_FILE); and when
 * the medium names a server and carries its token (`ferry media build --server URL`), it also
 * writes a oneshot systemd unit and a small script that post the record to the server at first
 * boot, retrying every minute until the server answers, and then remove themselves and the
 * token. So `ferry history` shows media installs beside network ones.
 */
import { randomUUID } from 'node:crypto';
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

export function installRecord(m: MediumManifest, events: ProgressEvent[], startedAt: string): InstallRecord {
  return {
    format: RECORD_FORMAT,
    id: randomUUID(),
    medium: m.label,
    node: m.node.name,
    image: { name: m.image.name, version: m.image.version, digest: m.image.digest },
    layout: m.layout,
    inputs: m.inputs,
    status: 'success',
    startedAt,
    endedAt: new Date().toISOString(),
    events: recordEvents(events),
  };
}

/** The first-boot report: POST the record with the medium's token; on success remove the unit, the script and the token. */
export function reportScript(): string {
  return `#!/bin/bash
# Ferry: post this machine's offline install record (installed from a restore medium) to the
# server named at medium build, once. Run by ferry-report-install.service at boot until it
# succeeds; FERRY_ROOT runs it against an installed tree from outside. curl or wget when the
# image has one; else, for an http:// server, bash's own /dev/tcp (FERRY_REPORT_CLIENT=bash
# chooses it).
set -u
root=\${FERRY_ROOT:-}
rec="$root/${RECORD_FILE}"
hdr="$root/${REPORT_HEADER_FILE}"
url="$(cat "$root/${REPORT_URL_FILE}")${MEDIA_RECORD_ROUTE}"
client=\${FERRY_REPORT_CLIENT:-}
if [ -z "$client" ]; then
  if command -v curl >/dev/null 2>&1; then client=curl
  elif command -v wget >/dev/null 2>&1; then client=wget
  else client=bash
  fi
fi
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
  exec 3<&-
  case "$status" in "HTTP/1."?" 200 "*) return 0 ;; *) echo "ferry-report-install: $url answered: \${status%$'\\r'}" >&2; return 1 ;; esac
}
case "$client" in
  # -H @file: the token never appears on a command line.
  curl) curl -fsS --max-time 60 -H @"$hdr" -H 'content-type: application/json' --data-binary @"$rec" -o /dev/null "$url" || exit 1 ;;
  wget) wget -q -T 60 --header="$(cat "$hdr")" --header='content-type: application/json' --post-file="$rec" -O /dev/null "$url" || exit 1 ;;
  *) post_bash || exit 1 ;;
esac
echo "ferry-report-install: the install record was posted to $url"
rm -f "$root/${REPORT_UNIT_LINK}" "$root/${REPORT_UNIT}" "$hdr" "$root/${REPORT_URL_FILE}" "$root/${REPORT_SCRIPT}"
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
