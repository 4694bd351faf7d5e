/**
 * What the boot environment's build takes out (initrd/slim.ts), tried on this host's real
 * programs:
 *  - aria2c from Debian (the BitTorrent engine of the boot environment) with libicudata hollowed
 *    as initrd/packages.txt says, loaded instead of the real one (LD_LIBRARY_PATH), downloads a
 *    torrent from its web seed (BEP 19) with the right bytes: the path Ferry's nodes use;
 *  - this host's Node (the one make-installer.sh turns into the installer) with its ICU data
 *    moved out: with NODE_ICU_DATA pointing at the filtered file, Intl, localeCompare, normalize
 *    and time zones work; without it, collation fails (so the data really comes from the file).
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../common/run.js';
import { slimNodeIcu, hollowElfSection } from '../../../initrd/slim.js';
import { parsePackageList } from '../../../initrd/spec.js';
import { layerTorrent, torrentFile } from '../../../server/torrent/torrent.js';
import { tempDir } from '../server/helpers.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const SPEC = parsePackageList(fs.readFileSync(join(ROOT, 'initrd', 'packages.txt'), 'utf8'));

describe('the slimmed boot environment\'s programs', () => {
  let t: ReturnType<typeof tempDir>;
  let srv: http.Server;
  let requests = 0;
  const blob = randomBytes(3 * 1024 * 1024 + 12345);
  const digest = 'sha256:' + createHash('sha256').update(blob).digest('hex');

  beforeAll(async () => {
    t = tempDir('ferry-slim-');
    // A web seed that answers Range requests, as the Ferry server's blob route does.
    srv = http.createServer((req, res) => {
      requests++;
      const m = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''));
      if (!m) {
        res.writeHead(200, { 'content-length': blob.length });
        return res.end(blob);
      }
      const from = Number(m[1]);
      const to = m[2] ? Number(m[2]) : blob.length - 1;
      res.writeHead(206, { 'content-range': `bytes ${from}-${to}/${blob.length}`, 'content-length': to - from + 1 });
      res.end(blob.subarray(from, to + 1));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  });
  afterAll(() => {
    srv?.close();
    t?.cleanup();
  });

  it('aria2c with the hollowed libicudata downloads a torrent from its web seed', { timeout: 120_000 }, async () => {
    const line = SPEC.hollow.find((h) => /libicudata/.test(h.path));
    expect(line, 'initrd/packages.txt hollows libicudata').toBeDefined();
    const libs = join(t.dir, 'lib');
    fs.mkdirSync(libs);
    const hollow = hollowElfSection(fs.readFileSync(line!.path), line!.section, line!.path);
    const name = line!.path.split('/').pop()!;
    fs.writeFileSync(join(libs, name), hollow);
    fs.symlinkSync(name, join(libs, name.replace(/\.\d+$/, '')));
    const env = { LD_LIBRARY_PATH: libs };
    // The loader takes the hollowed copy.
    const ldd = await run(['ldd', '/usr/bin/aria2c'], { env, quiet: true });
    expect(ldd.stdout).toMatch(new RegExp(`libicudata\\.so\\.72 => ${libs}/`));

    const file = join(t.dir, 'blob');
    fs.writeFileSync(file, blob);
    const lt = await layerTorrent(file, digest);
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/blobs/${digest}`;
    // No tracker answers (port 1): the web seed is the only source.
    const torrent = join(t.dir, 'layer.torrent');
    fs.writeFileSync(torrent, torrentFile(lt, 'http://127.0.0.1:1/announce', [url]));
    const out = join(t.dir, 'out');
    await run(
      ['aria2c', `--dir=${out}`, '--enable-dht=false', '--enable-dht6=false', '--enable-peer-exchange=false', '--bt-enable-lpd=false', '--seed-time=0',
        '--file-allocation=none', '--console-log-level=warn', '--summary-interval=0', '--bt-stop-timeout=60', '--follow-torrent=false', torrent],
      { env, timeoutMs: 100_000, quiet: true },
    );
    const got = fs.readFileSync(join(out, digest.slice('sha256:'.length)));
    expect('sha256:' + createHash('sha256').update(got).digest('hex')).toBe(digest);
    expect(requests).toBeGreaterThan(0);
  });

  it('Node without its linked ICU data works from the filtered file, and not without it', { timeout: 60_000 }, async () => {
    const node = process.execPath;
    const r = slimNodeIcu(fs.readFileSync(node), node);
    const exe = join(t.dir, 'node-slim');
    fs.writeFileSync(exe, r.exe, { mode: 0o755 });
    const icu = join(t.dir, 'icu');
    fs.mkdirSync(icu);
    fs.writeFileSync(join(icu, `${r.name}.dat`), r.dat);
    expect(r.dat.length).toBeLessThan(r.removed / 4);
    const script = [
      'const out = {',
      '  sorted: ["b", "ä", "a", "z"].sort((x, y) => x.localeCompare(y)).join(""),',
      '  lower: "ÄÖÜ".toLowerCase(), nfd: "é".normalize("NFD").length,',
      '  paris: new Intl.DateTimeFormat("en-US", { timeZone: "Europe/Paris", hour: "numeric", hourCycle: "h23" }).format(Date.UTC(2026, 0, 1, 12)),',
      '  num: (1234567.5).toLocaleString("en-US"), icu: process.versions.icu,',
      '};',
      'console.log(JSON.stringify(out));',
    ].join('\n');
    const ok = await run([exe, '-e', script], { env: { NODE_ICU_DATA: icu }, quiet: true });
    expect(JSON.parse(ok.stdout)).toEqual({ sorted: 'aäbz', lower: 'äöü', nfd: 2, paris: '13', num: '1,234,567.5', icu: process.versions.icu });
    // The same Node without the file: it starts (plain JavaScript runs), but ICU has no data.
    const env = { NODE_ICU_DATA: undefined };
    expect((await run([exe, '-e', 'console.log(6 * 7)'], { env, quiet: true })).stdout.trim()).toBe('42');
    const bad = await run([exe, '-e', '"a".localeCompare("b")'], { env, okCodes: [0, 1], quiet: true });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/Icu error|ICU/i);
  });
});
