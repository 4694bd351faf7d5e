/**
 * The first-boot report of a medium install over https in an image without curl or wget: the
 * script falls back to openssl s_client, verifying the server's certificate (here a self-signed
 * one, given as SSL_CERT_FILE; on a real system the image's CA store) and its name. The server
 * is a Ferry server on loopback behind a TLS-terminating proxy (Ferry serves plain http; https
 * is a proxy's job). A certificate the script cannot verify is a failure the unit retries.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPORT_HEADER_FILE, REPORT_SCRIPT, type MediumManifest } from '../../common/medium.js';
import { run } from '../../common/run.js';
import { writeOfflineRecord } from '../../installer/medium-record.js';
import { TargetRoot } from '../../layers/target.js';
import { listDeployments } from '../../server/db/deployments.js';
import { mintMediumToken } from '../../server/db/media.js';
import { FerryServer } from './helpers/ferry-server.js';
import { LAYOUT } from './server/helpers.js';

let s: FerryServer;
let proxy: https.Server;
let url: string;
let cert: string;

beforeAll(async () => {
  s = await FerryServer.start();
  cert = path.join(s.tmp, 'cert.pem');
  const key = path.join(s.tmp, 'key.pem');
  await run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { quiet: true });
  const target = new URL(s.url);
  proxy = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => {
    const up = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  url = `https://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
}, 120_000);

afterAll(async () => {
  await new Promise((r) => proxy?.close(r));
  await s?.close();
});

function installed(name: string): { root: string } {
  const digest = 'sha256:' + 'c'.repeat(64);
  const token = mintMediumToken(s.data, { label: 'HTTPS-M', imageDigest: digest, node: name, server: url, actor: 'test' });
  const m = { format: 'ferry-medium/1', label: 'HTTPS-M', unattended: true, server: url, token, node: { name, macs: [], properties: {} }, image: { name: 'img', version: 1, digest, layers: [] }, layout: { xml: LAYOUT, digest: 'sha256:' + 'd'.repeat(64) }, inputs: { hostname: name }, bootloader: 'auto', layers: [] } as unknown as MediumManifest;
  const root = path.join(s.tmp, name);
  fs.mkdirSync(root);
  writeOfflineRecord(new TargetRoot(root), m, [{ phase: 'finish', state: 'start', ts: new Date().toISOString() }], new Date().toISOString());
  return { root };
}

describe('first-boot report over https without curl or wget', () => {
  it('posts with openssl s_client, the certificate verified', async () => {
    const { root } = installed('tls1');
    const r = await run(['bash', path.join(root, REPORT_SCRIPT)], { env: { FERRY_ROOT: root, FERRY_REPORT_CLIENT: 'openssl', SSL_CERT_FILE: cert }, timeoutMs: 90_000 });
    expect(r.stdout).toContain(`the install record was posted to ${url}`);
    expect(fs.existsSync(path.join(root, REPORT_HEADER_FILE))).toBe(false);
    expect(listDeployments(s.data).filter((d) => d.node === 'tls1')).toMatchObject([{ status: 'success', createdBy: 'medium:HTTPS-M' }]);
  });

  it('refuses a certificate it cannot verify, and keeps the token for the retry', async () => {
    const { root } = installed('tls2');
    const r = await run(['bash', path.join(root, REPORT_SCRIPT)], { env: { FERRY_ROOT: root, FERRY_REPORT_CLIENT: 'openssl', SSL_CERT_FILE: '/dev/null' }, timeoutMs: 90_000, okCodes: [1] });
    expect(r.stderr).toContain('a TLS or certificate failure');
    expect(fs.existsSync(path.join(root, REPORT_HEADER_FILE))).toBe(true);
    expect(listDeployments(s.data).filter((d) => d.node === 'tls2')).toHaveLength(0);
  });
});
